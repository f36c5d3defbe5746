"""Rating one period of N usage records (default 1,000,000) into invoice lines, streamed.

The records are generated lazily, one DynamoDB-like page at a time (items whose attributes are
strings: an ISO timestamp, a transaction id and a map of string properties), and turned into
(timestamp, transaction_id, properties) tuples as the usage reader would. They are streamed
through two `metering.Aggregator`s at once: a sum metric grouped by tariff zone (4 zones) and
a plain sum metric. The aggregates are then priced with `pricing.price_quantity` on a
graduated (tiered) charge and become `InvoiceLine`s rounded once at the minor unit.

Baseline, measured in the same run: iterating the same generator doing nothing. Prints
records/s (median of --runs), the ratio aggregation / baseline, and the peak memory of each
(tracemalloc peak, in a separate traced pass; ru_maxrss of the process after the baseline
passes and after the aggregation passes). Target: streaming, peak at most 300 MB.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.billing.metering import Aggregator  # noqa: E402
from shared.billing.models import Charge, InvoiceLine, Metric, Tier  # noqa: E402
from shared.billing.money import round_money  # noqa: E402

try:
    from shared.billing.pricing import price_quantity  # noqa: E402
except ImportError:  # pricing.py not written yet: price per unit and say so
    price_quantity = None

PERIOD_START = datetime(2025, 3, 1, tzinfo=UTC)
PERIOD_SECONDS = 31 * 24 * 3600
ZONES = ("EU", "US", "APAC", "LATAM")
CURRENCY = "USD"
TARGET_MB = 300

BY_ZONE = Metric(code="call_seconds", name="Call seconds", aggregation="sum", field="seconds", group_by="zone")
PLAIN = Metric(code="data_mb", name="Data (MB)", aggregation="sum", field="mb")
CHARGES = {
    metric.code: Charge(code=metric.code, name=metric.name, type="usage", model="tiered", timing="in_arrears",
                        metric_code=metric.code,
                        tiers=[Tier(up_to=Decimal(1_000_000), unit_price=Decimal("0.0010")),
                               Tier(up_to=Decimal(50_000_000), unit_price=Decimal("0.0007")),
                               Tier(unit_price=Decimal("0.0005"))])
    for metric in (BY_ZONE, PLAIN)
}

Record = tuple[datetime, str, dict[str, str]]


def pages(count: int, page_size: int, seed: int = 2025) -> Iterator[list[dict]]:
    """DynamoDB-like pages of usage items, built one page at a time (what a Query returns)."""
    rng = random.Random(seed)
    for first in range(0, count, page_size):
        page = []
        for index in range(first, min(first + page_size, count)):
            offset = rng.randrange(PERIOD_SECONDS)
            page.append({
                "sk": (PERIOD_START + timedelta(seconds=offset)).isoformat(),
                "transaction_id": f"tx-{index:09d}",
                "properties": {"seconds": str(rng.randint(1, 3600)), "zone": ZONES[rng.randrange(len(ZONES))],
                               "mb": f"{rng.randint(0, 500_000) / 100:.2f}"},
            })
        yield page


def records(count: int, page_size: int) -> Iterator[Record]:
    for page in pages(count, page_size):
        for item in page:
            yield datetime.fromisoformat(item["sk"]), item["transaction_id"], item["properties"]


def iterate_only(count: int, page_size: int) -> None:
    for _ in records(count, page_size):
        pass


def rate(count: int, page_size: int) -> list[InvoiceLine]:
    aggregators = [Aggregator(BY_ZONE), Aggregator(PLAIN)]
    for timestamp, transaction_id, properties in records(count, page_size):
        for aggregator in aggregators:
            aggregator.add(timestamp, transaction_id, properties)
    lines = []
    for aggregator in aggregators:
        metric, charge = aggregator.metric, CHARGES[aggregator.metric.code]
        for group, result in sorted(aggregator.result().items(), key=lambda kv: kv[0] or ""):
            if price_quantity is not None:
                priced = price_quantity(charge, result.quantity)
                quantity, unit_price, amount, details = priced.quantity, priced.unit_price, priced.amount, \
                    list(priced.details)
            else:
                quantity, unit_price = result.quantity, charge.tiers[0].unit_price
                amount, details = quantity * unit_price, ["per unit at the first tier's price (pricing.py absent)"]
            lines.append(InvoiceLine(
                kind="usage", description=f"{charge.name} ({group})" if group else charge.name,
                charge_code=charge.code, quantity=quantity, unit_price=unit_price,
                amount=round_money(amount, CURRENCY), currency=CURRENCY, period_start=date(2025, 3, 1),
                period_end=date(2025, 4, 1), metric_code=metric.code, group=group,
                usage_records=result.records, details=details))
    return lines


def timed(work: Callable[[], object], runs: int) -> tuple[float, object]:
    seconds, outcome = [], None
    for _ in range(runs):
        start = time.perf_counter()
        outcome = work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), outcome


def traced_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def check(lines: list[InvoiceLine], count: int) -> None:
    """DS-009: each metric's lines come from all N records; the zone lines add up to the
    zone metric's plain sum."""
    for metric in (BY_ZONE, PLAIN):
        named = sum(ln.usage_records for ln in lines if ln.metric_code == metric.code)
        if named != count:
            raise SystemExit(f"DS-009: the {metric.code} lines name {named} records, not {count}")
    zones = {ln.group for ln in lines if ln.metric_code == BY_ZONE.code}
    if zones != set(ZONES):
        raise SystemExit(f"expected one line per zone {sorted(ZONES)}, got {sorted(zones)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=1000, help="items per generated DynamoDB page")
    args = parser.parse_args()
    count, size = args.records, args.page_size

    print(f"{count:,} records, pages of {size}, median of {args.runs} runs; pricing: "
          f"{'pricing.price_quantity, tiered charge' if price_quantity else 'per unit (pricing.py absent)'}")
    base_s, _ = timed(lambda: iterate_only(count, size), args.runs)
    base_peak = traced_peak(lambda: iterate_only(count, size))
    base_rss = maxrss_mb()
    rate_s, lines = timed(lambda: rate(count, size), args.runs)
    rate_peak = traced_peak(lambda: rate(count, size))
    rate_rss = maxrss_mb()
    check(lines, count)

    print(f"{'pass':<34}{'median s':>10}{'records/s':>12}{'ratio':>8}{'tracemalloc MB':>16}{'maxrss MB':>11}")
    print(f"{'baseline: iterate the generator':<34}{base_s:>10.2f}{count / base_s:>12,.0f}{1:>8.2f}"
          f"{base_peak / 2**20:>16.1f}{base_rss:>11.1f}")
    print(f"{'rating: 2 metrics + tiered price':<34}{rate_s:>10.2f}{count / rate_s:>12,.0f}{rate_s / base_s:>8.2f}"
          f"{rate_peak / 2**20:>16.1f}{rate_rss:>11.1f}")
    print(f"aggregation alone: {rate_s - base_s:.2f} s, {count / max(rate_s - base_s, 1e-9):,.0f} records/s")
    print(f"peak memory target: {TARGET_MB} MB -> {'met' if rate_rss <= TARGET_MB else 'MISSED'}")
    for line in lines:
        print(f"  {line.description:<24}{format(line.quantity, 'f'):>22}{line.usage_records:>10} records"
              f"{format(line.amount, 'f'):>14} {line.currency}")


if __name__ == "__main__":
    main()
