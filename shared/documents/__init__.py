"""Invoice documents: HTML (`html`), PDF (`pdf`, the only weasyprint user) and email (`email`).

Import the submodule you need; this package imports nothing, so the API can use the HTML
and email parts without loading weasyprint.
"""
