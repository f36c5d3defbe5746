"""The OpenAPI document, generated from the same pydantic models the handler validates with.

`python -m functions.api.openapi` rewrites functions/api/openapi.json;
tests/unit/test_openapi.py fails when the committed file drifts from the code.
"""

import json
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from functions.api.handler import app

PATH = Path(__file__).with_name("openapi.json")


def document() -> str:
    schema = app.get_openapi_json_schema(
        title="Billing platform API",
        version="1.0.0",
        description="Subscriptions, bill runs and invoices. Money is a decimal string with its "
                    "currency; every `*_end` date is exclusive. Send `Authorization: Bearer <key>`; "
                    "every POST accepts `Idempotency-Key`.",
        security_schemes={"bearer": HTTPBearer()},
        security=[{"bearer": []}],
    )
    return json.dumps(json.loads(schema), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(document())
    print(f"wrote {PATH}")
