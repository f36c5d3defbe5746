"""Invoice PDF with weasyprint (needs Pango; see `shared/documents/README.md`).

The only module of the package that imports weasyprint. Nothing is fetched from the
network: fonts come from fontconfig, and the URL fetcher serves `data:` URLs and files
under `templates/` only (weasyprint >= 68 for the `URLFetcher` class).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint import HTML, URLFetcher
from weasyprint.text.fonts import FontConfiguration

from shared.billing.models import Invoice
from shared.documents.html import TEMPLATES, render_invoice_html

_ROOT = TEMPLATES.resolve()


class LocalOnlyFetcher(URLFetcher):
    """Serves `data:` URLs and files under templates/; refuses anything else."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"data", "file"}, allow_redirects=False)

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme == "file" and not (
            parts.netloc in ("", "localhost")
            and Path(url2pathname(parts.path)).resolve().is_relative_to(_ROOT)
        ):
            raise ValueError(f"invoice documents may only load files under {_ROOT}: {url}")
        return super().fetch(url, headers)


_FONTS = FontConfiguration()


def html_to_pdf(html: str, pdf_variant: str | None = None) -> bytes:
    """PDF bytes for a self-contained HTML document (relative URLs resolve in templates/).

    `pdf_variant="pdf/a-3b"` writes a PDF/A-3b (what Factur-X embeds its XML in)."""
    document = HTML(string=html, base_url=_ROOT.as_uri() + "/", url_fetcher=LocalOnlyFetcher())
    return document.write_pdf(font_config=_FONTS, pdf_variant=pdf_variant)


def render_invoice_pdf(invoice: Invoice, mode: str = "document", logo: tuple[str, bytes] | None = None,
                       facturx: bool = False, credit_note_of: Invoice | None = None) -> bytes:
    """The invoice rendered with its own template version, as PDF bytes (see html.context for
    `mode` and `logo`). `facturx`: a PDF/A-3b with the EN 16931 CII XML embedded (Factur-X);
    a credit note's XML references `credit_note_of`."""
    html = render_invoice_html(invoice, mode, logo)
    if not facturx:
        return html_to_pdf(html)
    from shared.documents.facturx import facturx_pdf  # lxml and pypdf: only when asked for

    return facturx_pdf(html_to_pdf(html, "pdf/a-3b"), invoice, credit_note_of)
