"""The label catalogs: complete, consistent placeholders, sensible fallbacks."""

from __future__ import annotations

from string import Formatter

import pytest

from shared.documents.labels import LABELS, babel_locale, catalog_language, labels_for


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


@pytest.mark.parametrize("language", sorted(LABELS))
def test_every_catalog_has_every_label_with_the_same_placeholders(language):
    english = LABELS["en"]
    catalog = LABELS[language]

    assert set(catalog) == set(english)
    for key, text in catalog.items():
        assert fields(text) == fields(english[key]), key
        assert text.strip(), key


def test_the_required_languages_are_there():
    assert {"en", "pt-BR", "es", "fr", "de", "ja"} <= set(LABELS)


@pytest.mark.parametrize(
    ("language", "catalog"),
    [
        ("en", "en"), ("en-GB", "en"), ("pt-BR", "pt-BR"), ("pt_br", "pt-BR"), ("pt", "pt-BR"),
        ("pt-PT", "pt-BR"), ("es-MX", "es"), ("fr-CA", "fr"), ("de-AT", "de"), ("ja-JP", "ja"),
        ("nl", "en"), ("", "en"), (None, "en"),
    ],
)
def test_catalog_fallback(language, catalog):
    assert catalog_language(language) == catalog


@pytest.mark.parametrize(
    ("language", "locale"),
    [
        ("en", "en"), ("en-GB", "en_GB"), ("pt-BR", "pt_BR"), ("es-MX", "es_MX"), ("ja", "ja"),
        ("nl", "en"), ("xx-YY", "en"), (None, "en"),
    ],
)
def test_babel_locale_follows_the_catalog(language, locale):
    assert babel_locale(language) == locale


def test_labels_for_fills_gaps_from_english(monkeypatch):
    monkeypatch.setitem(LABELS, "fr", {k: v for k, v in LABELS["fr"].items() if k != "notes"})
    labels_for.cache_clear()
    try:
        assert labels_for("fr")["notes"] == "Notes"
        assert labels_for("fr")["invoice"] == "Facture"
    finally:
        labels_for.cache_clear()
