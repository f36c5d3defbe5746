"""The committed OpenAPI document must match the code (regenerate: python -m functions.api.openapi)."""

import json

from functions.api import openapi


def test_committed_openapi_matches_the_code():
    assert openapi.PATH.read_text() == openapi.document(), "run: python -m functions.api.openapi"


def test_money_is_a_string_in_the_contract():
    schema = json.loads(openapi.document())["components"]["schemas"]
    for model, field in [("ChargeInput", "price"), ("InvoiceLine", "amount"), ("Invoice", "total")]:
        assert schema[model]["properties"][field]["type"] == "string", (model, field)
