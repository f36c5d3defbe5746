"""The API may import the HTML and email modules: they must not load weasyprint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_html_and_email_do_not_import_weasyprint():
    code = (
        "import sys\n"
        "import shared.documents, shared.documents.html, shared.documents.email\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'weasyprint', 'pydyf',"
        " 'cffi', 'tinycss2', 'cssselect2', 'fontTools'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == ""
