"""The invoice PDF: a real PDF, paged, text extractable, nothing fetched from the network."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from document_fixtures import HASH, make_invoice, make_long_invoice, make_taxed_invoice

try:
    from weasyprint import HTML

    from shared.documents.html import TEMPLATES, render_invoice_html
    from shared.documents.pdf import LocalOnlyFetcher, html_to_pdf, render_invoice_pdf
except (ImportError, OSError) as error:  # weasyprint missing, or Pango missing under it
    pytest.skip(f"weasyprint unavailable: {error}", allow_module_level=True)

needs_pdftotext = pytest.mark.skipif(not shutil.which("pdftotext"), reason="no pdftotext")


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def page_count(invoice) -> int:
    return len(HTML(string=render_invoice_html(invoice)).render().pages)


def has_japanese_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    listed = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True)
    return bool(listed.stdout.strip())


def test_a_short_invoice_is_a_one_page_pdf(invoice):
    pdf = render_invoice_pdf(invoice)

    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert page_count(invoice) == 1


def test_twenty_lines_run_over_pages_with_the_header_repeated():
    assert page_count(make_long_invoice(20)) == 2


@needs_pdftotext
def test_pdf_text_is_extractable(invoice, tmp_path):
    text = pdf_text(render_invoice_pdf(invoice), tmp_path)

    for expected in (
        "Invoice", "SORUS-2025-000123", "CT-ESP-0042", "GL 7010", "$0.00", "$685.48",
        "Mar 1, 2025 – Mar 31, 2025", "Page 1 of 1", f"Document hash: {HASH[:16]}",
    ):
        assert expected in text, expected


@needs_pdftotext
def test_page_numbers_count_all_pages(tmp_path):
    text = pdf_text(render_invoice_pdf(make_long_invoice(20)), tmp_path)

    assert "Page 1 of 2" in text and "Page 2 of 2" in text
    assert text.count("Unit price") == 2  # the table header repeats on page 2


@needs_pdftotext
def test_tax_invoice_in_german(tmp_path):
    text = pdf_text(render_invoice_pdf(make_taxed_invoice(language="de")), tmp_path)

    assert "Rechnung" in text and "Bemessungsgrundlage" in text and "Seite 1 von 1" in text
    assert "2.400,00 £" in text.replace("\xa0", " ")


@needs_pdftotext
@pytest.mark.skipif(not has_japanese_font(), reason="no Japanese font (fonts-ipaexfont-gothic)")
def test_japanese_renders_with_a_japanese_font(tmp_path):
    pdf = render_invoice_pdf(make_invoice(language="ja"))
    text = pdf_text(pdf, tmp_path)

    assert "請求書" in text and "ご請求金額" in text and "1 / 1 ページ" in text
    if shutil.which("pdffonts"):
        path = tmp_path / "ja.pdf"
        path.write_bytes(pdf)
        fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True).stdout
        assert any(name in fonts for name in ("IPAex", "IPAGothic", "NotoSansCJK")), fonts


def test_no_network_and_no_files_outside_the_templates():
    fetcher = LocalOnlyFetcher()
    for url in ("http://169.254.169.254/latest/meta-data/", "https://example.com/logo.png",
                "file:///etc/passwd", f"file://{TEMPLATES}/../html.py"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    css = fetcher.fetch((TEMPLATES / "invoice_v1.css").as_uri())
    assert b"@page" in css.read()
    css.close()


def test_an_external_image_is_skipped_not_fetched():
    pdf = html_to_pdf('<p>x</p><img src="http://192.0.2.1/logo.png">')

    assert pdf.startswith(b"%PDF-")


def _harfbuzz_subset() -> bool:
    from weasyprint.text import ffi

    return getattr(ffi, "harfbuzz_subset", None) is not None


@pytest.mark.skipif(not _harfbuzz_subset(), reason="fontTools subsetting stamps the time")
def test_a_finalized_invoice_re_renders_to_the_same_bytes(invoice):
    assert render_invoice_pdf(invoice) == render_invoice_pdf(invoice)
