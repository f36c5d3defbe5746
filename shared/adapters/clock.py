"""The platform's clock: real time in the cloud, a settable file on the local platform."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()


class FileClock(SystemClock):
    """Reads the instant the local runtime wrote (ISO 8601, UTC) at every call."""

    def __init__(self, path: str):
        self.path = Path(path)

    def now(self) -> datetime:
        text = self.path.read_text().strip()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class FixedClock(SystemClock):
    """A clock for tests and previews: stays where it is set."""

    def __init__(self, at: datetime):
        self.at = at if at.tzinfo else at.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def clock_from(path: str | None) -> SystemClock:
    return FileClock(path) if path else SystemClock()
