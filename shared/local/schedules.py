"""EventBridge Scheduler expressions: when does a schedule fire in an interval?

Supports `cron(min hour day-of-month month day-of-week year)` (`*`, `?`, lists, ranges,
steps, month and day names; day-of-week 1-7 = SUN-SAT; one of the two day fields is `?`),
`rate(n minute|minutes|hour|hours|day|days)` and `at(yyyy-mm-ddThh:mm:ss)`. Cron and at
are read in the schedule's time zone. Rates count from the schedule's StartDate, or from
the Unix epoch without one (so `rate(1 day)` fires at midnight UTC: deterministic locally).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MONTHS = {m: i for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), start=1)}
UNITS = {"minute": 60, "hour": 3600, "day": 86400}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def firings(expression: str, after: datetime, until: datetime, tz: str = "UTC",
            start: datetime | None = None, end: datetime | None = None) -> list[datetime]:
    """Every firing instant in (after, until], within [start, end], ascending, in UTC."""
    low = max(after, start - timedelta(microseconds=1)) if start else after
    high = min(until, end) if end else until
    if high <= low:
        return []
    kind, _, body = expression.strip().partition("(")
    body = body.rstrip(")").strip()
    if kind == "cron":
        times = _cron(body, low, high, ZoneInfo(tz))
    elif kind == "rate":
        times = _rate(body, low, high, start or EPOCH)
    elif kind == "at":
        moment = datetime.fromisoformat(body).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
        times = [moment] if low < moment <= high else []
    else:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    return times


def _rate(body: str, low: datetime, high: datetime, anchor: datetime) -> list[datetime]:
    match = re.fullmatch(r"(\d+)\s+(minute|hour|day)s?", body)
    if not match or int(match[1]) < 1:
        raise ValueError(f"bad rate expression rate({body})")
    period = int(match[1]) * UNITS[match[2]]
    first = int((low - anchor).total_seconds() // period) + 1
    moment = anchor + timedelta(seconds=first * period)
    times = []
    while moment <= high:
        times.append(moment)
        moment += timedelta(seconds=period)
    return times


def _cron(body: str, low: datetime, high: datetime, zone: ZoneInfo) -> list[datetime]:
    fields = body.split()
    if len(fields) != 6:
        raise ValueError(f"cron needs 6 fields, got {body!r}")
    minutes = sorted(_field(fields[0], 0, 59))
    hours = sorted(_field(fields[1], 0, 23))
    dom, months = _field(fields[2], 1, 31), _field(fields[3], 1, 12, MONTHS)
    dow, years = _field(fields[4], 1, 7, DAYS), _field(fields[5], 1970, 2199)
    if (dom is None) == (dow is None):
        raise ValueError(f"cron({body}): exactly one of day-of-month and day-of-week is '?'")
    times: set[datetime] = set()
    day = low.astimezone(zone).date()
    while day <= high.astimezone(zone).date():
        weekday = day.isoweekday() % 7 + 1  # SUN=1 ... SAT=7
        if (day.year in years and day.month in months
                and (day.day in dom if dom is not None else weekday in dow)):
            for hour in hours:
                for minute in minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    moment = local.astimezone(UTC)  # a skipped DST time runs after the jump
                    if low < moment <= high:
                        times.add(moment)
        day += timedelta(days=1)
    return sorted(times)


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> set[int] | None:
    if text == "?":
        return None
    values: set[int] = set()
    for part in text.upper().split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = lo, hi
        elif "-" in span:
            first, last = (_value(v, names) for v in span.split("-", 1))
        else:
            first = _value(span, names)
            last = hi if step else first
        if not (lo <= first <= hi and lo <= last <= hi) or first > last:
            raise ValueError(f"cron field {text!r} is outside {lo}-{hi}")
        values.update(range(first, last + 1, int(step) if step else 1))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"unsupported cron value {text!r}")
    return int(text)
