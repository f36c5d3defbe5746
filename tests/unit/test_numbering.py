"""An entity's number format keeps distinct numbers distinct (issue 12): `{number!s:.3}` wrote 1000 as
'100', the number of document 100 again; such a format is refused, naming the field."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.billing.invoicing import document_number, number_format_problem
from shared.services.requests.catalog import BillingEntityCreate

ACCEPTED = ["{prefix}-{number:06d}", "{prefix}{number:05d}", "{prefix}{number}", "INV/{number:x}",
            "{prefix}-{number:,}", "{prefix}{number:*>8d}"]
REFUSED = ["{prefix}-{number!s:.3}", "{prefix}{number!r}", "{prefix}{number:.2e}", "{prefix}{number:%}",
           "{prefix}{number:c}", "{prefix}{number.real}", "{prefix}{other}", "{prefix}", "{{number}}",
           "{prefix}{number:{prefix}}", "{prefix}{"]


@pytest.mark.parametrize("number_format", REFUSED)
def test_a_format_that_could_repeat_a_number_is_refused_naming_the_field(number_format):
    assert number_format_problem(number_format)
    with pytest.raises(pydantic.ValidationError) as refused:
        BillingEntityCreate(code="uk", name="UK", country="GB", currency="GBP", invoice_prefix="UK",
                            number_format=number_format)
    assert [error["loc"] for error in refused.value.errors()] == [("number_format",)]


@pytest.mark.parametrize("number_format", ACCEPTED)
@given(a=st.integers(1, 10**12), b=st.integers(1, 10**12))
def test_an_accepted_format_keeps_distinct_numbers_distinct(number_format, a, b):
    assert number_format_problem(number_format) is None
    assert (document_number(number_format, "UK", a) == document_number(number_format, "UK", b)) == (a == b)
