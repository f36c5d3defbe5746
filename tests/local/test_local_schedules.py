"""EventBridge Scheduler expressions (pure: no runtime)."""

from datetime import datetime

import pytest

from shared.local.clock import format_instant, parse_instant
from shared.local.schedules import firings


def utc(text: str) -> datetime:
    return parse_instant(text)


def fire(expression: str, after: str, until: str, **kwargs) -> list[str]:
    return [format_instant(t) for t in firings(expression, utc(after), utc(until), **kwargs)]


def test_daily_cron_fires_in_the_half_open_interval():
    times = fire("cron(0 2 * * ? *)", "2025-04-01T02:00:00Z", "2025-04-04T02:00:00Z")
    assert times == ["2025-04-02T02:00:00Z", "2025-04-03T02:00:00Z", "2025-04-04T02:00:00Z"]


@pytest.mark.parametrize(("expression", "expected"), [
    ("cron(*/20 9 1 * ? *)", ["2025-04-01T09:00:00Z", "2025-04-01T09:20:00Z",
                              "2025-04-01T09:40:00Z", "2025-05-01T09:00:00Z",
                              "2025-05-01T09:20:00Z", "2025-05-01T09:40:00Z"]),
    ("cron(0 8 ? * MON-FRI *)", None),  # checked below: weekdays only
    ("cron(30 6 1,15 JAN,APR ? 2025)", ["2025-04-01T06:30:00Z", "2025-04-15T06:30:00Z"]),
    ("cron(0 0 L * ? *)", ValueError),
    ("cron(0 0 1 * 2 *)", ValueError),  # one day field must be '?'
    ("cron(0 25 * * ? *)", ValueError),
])
def test_cron_fields(expression, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            fire(expression, "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z")
        return
    times = fire(expression, "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z")
    if expected is None:
        assert times and all(utc(t).isoweekday() <= 5 for t in times)
        assert len(times) == 45  # Monday Mar 31, 22 weekdays in April, 22 in May
    else:
        assert times == expected


def test_day_of_week_numbers_start_on_sunday():
    assert fire("cron(0 12 ? * 1 *)", "2025-04-01T00:00:00Z", "2025-04-08T00:00:00Z") == [
        "2025-04-06T12:00:00Z"]  # a Sunday


def test_cron_reads_the_schedule_time_zone():
    # 02:00 in Toronto is 06:00 UTC in summer time and 07:00 UTC in winter
    times = fire("cron(0 2 1 * ? *)", "2025-02-15T00:00:00Z", "2025-04-15T00:00:00Z",
                 tz="America/Toronto")
    assert times == ["2025-03-01T07:00:00Z", "2025-04-01T06:00:00Z"]


def test_a_time_skipped_by_daylight_saving_runs_after_the_jump():
    # 2025-03-09 02:30 does not exist in Toronto: it runs at 03:30 EDT = 07:30 UTC
    times = fire("cron(30 2 * * ? *)", "2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z",
                 tz="America/Toronto")
    assert times == ["2025-03-09T07:30:00Z"]


def test_rate_counts_from_the_start_date_or_the_epoch():
    assert fire("rate(1 day)", "2025-04-01T00:00:00Z", "2025-04-03T00:00:00Z") == [
        "2025-04-02T00:00:00Z", "2025-04-03T00:00:00Z"]
    assert fire("rate(12 hours)", "2025-04-01T00:00:00Z", "2025-04-02T00:00:00Z",
                start=utc("2025-04-01T05:00:00Z")) == [
        "2025-04-01T05:00:00Z", "2025-04-01T17:00:00Z"]
    with pytest.raises(ValueError):
        fire("rate(0 minutes)", "2025-04-01T00:00:00Z", "2025-04-02T00:00:00Z")


def test_at_fires_once_and_end_date_bounds_everything():
    assert fire("at(2025-04-10T09:30:00)", "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z",
                tz="Europe/Paris") == ["2025-04-10T07:30:00Z"]
    assert fire("at(2025-04-10T09:30:00)", "2025-04-11T00:00:00Z", "2025-05-01T00:00:00Z") == []
    assert fire("cron(0 0 * * ? *)", "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z",
                end=utc("2025-04-03T00:00:00Z")) == ["2025-04-02T00:00:00Z",
                                                     "2025-04-03T00:00:00Z"]


def test_clock_instants():
    assert format_instant(parse_instant("2025-04-01")) == "2025-04-01T00:00:00Z"
    assert format_instant(parse_instant("2025-04-01T02:00:00+02:00")) == "2025-04-01T00:00:00Z"
    with pytest.raises(ValueError):
        parse_instant("2025-04-01T00:00:00")  # no zone
