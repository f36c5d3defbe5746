"""The `events/` samples, as the integration tests send them."""

from __future__ import annotations

import json
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_sample(name: str, api_key: str, **replace: str) -> dict:
    """`events/<name>` with its `${API_KEY}` and any other text replaced."""
    text = (EVENTS / name).read_text().replace("${API_KEY}", api_key)
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)
