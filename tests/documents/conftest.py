"""Fixtures for the document tests; the builders live in `document_fixtures`."""

from __future__ import annotations

import pytest
from document_fixtures import make_invoice, make_taxed_invoice

from shared.billing.models import Invoice


@pytest.fixture
def invoice() -> Invoice:
    return make_invoice()


@pytest.fixture
def taxed_invoice() -> Invoice:
    return make_taxed_invoice()
