"""Invoice PDFs per second on 2 cores, and the ratio to weasyprint rendering the same HTML alone.

A process pool of `--workers` (default 2, one per core) renders `--pdfs` PDFs per run from a
mix of typical invoices (tests/documents/document_fixtures.py: 1 to 20 lines, with and without
a tax line, in English, Brazilian Portuguese, German and Japanese, with the template new invoices
are issued with), in two ways:

- ours: `shared.documents.pdf.render_invoice_pdf(invoice)`, the bill run's renderer
  (jinja2 template + babel formatting + weasyprint with the local-only URL fetcher and the
  shared font configuration);
- weasyprint alone: `weasyprint.HTML(string=html, base_url=templates/).write_pdf()` on the
  HTML our template produced for the same invoice (rendered once, before timing), as the
  library is used by default (a new font configuration per document);
- weasyprint alone, fonts kept: the same with one `FontConfiguration` per process, as ours
  keeps it (the strictest baseline: weasyprint's own work and nothing else).

Each worker renders one of each first (imports, fonts: not timed). The ways take turns in a
rotating order, run after run; the figures are medians over `--runs`: PDFs/s = PDFs / wall
time of the pool, and the ratio = our wall time / the baseline's for the same PDFs (target: at
most 1.2). Prints the size of each invoice's PDF and their median.

    .venv/bin/python tests/benchmarks/bench_pdf.py [--pdfs 60] [--runs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "documents")]

_invoices: list = []
_html: list[str] = []
_fonts: list = []


def typical_invoices() -> list:
    from document_fixtures import make_invoice, make_long_invoice, make_taxed_invoice

    from shared.billing.models import Invoice

    current = Invoice.model_fields["template_version"].default  # what new invoices are issued with
    invoices = [
        ("2 lines, en", make_invoice()),
        ("1 line + VAT, en", make_taxed_invoice(custom_fields={"po_number": "PO-4471"})),
        ("3 lines, pt-BR", make_long_invoice(3, language="pt-BR")),
        ("5 lines, de", make_long_invoice(5, language="de")),
        ("2 lines, ja", make_invoice(language="ja")),
        ("20 lines, en", make_long_invoice(20)),
    ]
    return [(name, invoice.model_copy(update={"template_version": current})) for name, invoice in invoices]


def _start_worker() -> None:
    """Build the invoices and their HTML, then render one of each way (not timed)."""
    from shared.documents.html import render_invoice_html

    _invoices[:] = [invoice for _, invoice in typical_invoices()]
    _html[:] = [render_invoice_html(invoice) for invoice in _invoices]
    _ours(0)
    _weasyprint_alone(0)
    _weasyprint_fonts_kept(0)


def _ours(index: int) -> int:
    from shared.documents.pdf import render_invoice_pdf

    return len(render_invoice_pdf(_invoices[index % len(_invoices)]))


def _weasyprint_alone(index: int) -> int:
    from weasyprint import HTML

    from shared.documents.html import TEMPLATES

    html = _html[index % len(_html)]
    return len(HTML(string=html, base_url=TEMPLATES.resolve().as_uri() + "/").write_pdf())


def _weasyprint_fonts_kept(index: int) -> int:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from shared.documents.html import TEMPLATES

    if not _fonts:
        _fonts.append(FontConfiguration())
    html = _html[index % len(_html)]
    return len(HTML(string=html, base_url=TEMPLATES.resolve().as_uri() + "/").write_pdf(font_config=_fonts[0]))


WAYS = {"ours": _ours, "weasyprint alone": _weasyprint_alone, "weasyprint alone, fonts kept": _weasyprint_fonts_kept}


def _timed(pool: ProcessPoolExecutor, render, pdfs: int) -> float:
    started = time.perf_counter()
    sizes = list(pool.map(render, range(pdfs), chunksize=1))
    wall = time.perf_counter() - started
    assert len(sizes) == pdfs and min(sizes) > 1000, sizes
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", type=int, default=60, help="PDFs per run and way (default 60)")
    parser.add_argument("--runs", type=int, default=5, help="runs per way; medians are reported (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2: one per core)")
    args = parser.parse_args()

    print(f"{args.workers} worker processes on {os.cpu_count()} CPUs, {args.pdfs} PDFs per run, "
          f"{args.runs} runs per way")
    walls: dict[str, list[float]] = {name: [] for name in WAYS}
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_start_worker) as pool:
        list(pool.map(_ours, range(args.workers * 2)))  # every worker started and warm
        names = list(WAYS)
        for run in range(args.runs):
            order = names[run % len(names):] + names[:run % len(names)]
            for name in order:
                walls[name].append(_timed(pool, WAYS[name], args.pdfs))
            rates = (f"{name} {args.pdfs / walls[name][-1]:.2f} PDFs/s" for name in names)
            print(f"  run {run + 1}: " + ", ".join(rates))

    for name in names:
        print(f"{name + ':':<29} {args.pdfs / statistics.median(walls[name]):.2f} PDFs/s (median)")
    for baseline in names[1:]:
        ratios = [o / b for o, b in zip(walls["ours"], walls[baseline], strict=True)]
        print(f"ratio ours / {baseline}: {statistics.median(ratios):.3f} (median of the runs; target <= 1.2)")

    from shared.documents.pdf import render_invoice_pdf

    sizes = []
    for name, invoice in typical_invoices():
        size = len(render_invoice_pdf(invoice))
        sizes.append(size)
        print(f"  {name:<18} {size / 1024:7.1f} KiB")
    print(f"typical PDF: {statistics.median(sizes) / 1024:.1f} KiB (median of the mix)")


if __name__ == "__main__":
    main()
