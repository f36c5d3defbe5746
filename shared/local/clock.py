"""The local platform's clock: one ISO-8601 UTC instant in a file (`BILLING_CLOCK_FILE`).

Handlers read it through `shared.adapters.clock.FileClock`; only the runtime writes it, and
only forwards (see scheduler.advance).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path


def parse_instant(text: str) -> datetime:
    """`2025-04-01`, `2025-04-01T00:00:00Z` or with an offset -> an aware UTC datetime."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC")
    return moment.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalClock:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def now(self) -> datetime:
        return parse_instant(self.path.read_text())

    def set(self, moment: datetime) -> None:
        """Atomic, so a handler never reads half a timestamp."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(format_instant(moment) + "\n")
        os.replace(tmp, self.path)
