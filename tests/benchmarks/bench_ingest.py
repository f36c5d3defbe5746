"""Usage ingestion throughput through the API handler, in-process, vs the storage floor.

Starts the platform in this process (moto's server and the real CDK stack, as
bench_bill_run.py does, no HTTP API; or `--transport mock`: the same template deployed into
moto's in-memory backends behind `mock_aws`, no HTTP at all) at 2025-03-20T00:00:00Z, with
moto's per-request cost made independent of the table (bench_bill_run.lean_moto; `--stock-moto`:
as shipped), creates one metric (sum of `quantity`), one plan with a usage charge and
`--subscriptions` contracts, then sends batches
of 1,000 events as API Gateway proxy events for `POST /v1/usage-events` straight to
`functions.api.handler.handler` (authentication, the idempotency layer with a fresh
`Idempotency-Key` per batch, validation, `usage.ingest`, the response). Each batch has 900 new
events and 100 (`--duplicates`) repeating transaction ids of the previous batch; every
response is checked (accepted 900, duplicates 100, nothing rejected). One batch warms up.

The storage floor, measured after each batch on the same endpoint and table: the batch's new
usage items (built with the platform's own item layout, keys under FLOOR#) written with plain
`batch_write_item`, 25 per request, with a boto3 client like the platform's. Items are built
before the clock starts. Prints events/s (1,000 / wall, the median over `--batches`), the
floor's events/s for the same 1,000 events and the ratio wall / floor (medians of the
per-batch figures). Targets: >= 5,000 events/s, ratio <= 1.5.

`--profile` then sends `--profile-batches` more batches timing every boto3 call by operation
(the wall time the handler waits for each request) and as many again under cProfile (the
handler's own thread), and prints where a batch's time goes. `--try` measures the changes
proposed for shared/services/usage.py and shared/adapters/dynamodb.py, patched in-process here
(see PROPOSALS; the platform's code is not changed).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import cProfile
import functools
import io
import json
import logging
import os
import pstats
import statistics
import sys
import threading
import time
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_bill_run import lean_moto  # noqa: E402

CLOCK = "2025-03-20T00:00:00Z"
BATCH = 1000
TARGET_RATE = 5000
TARGET_RATIO = 1.5
METRIC = "api_calls"

print = functools.partial(builtins.print, flush=True)  # noqa: A001 (rebound to the console in main)


class Context:
    """What the Python runtime's context object offers the handler."""

    function_name = "api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    memory_limit_in_mb = 1024

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def proxy_event(api_key: str, events: list[dict]) -> dict:
    """`POST /v1/usage-events` as API Gateway's REST proxy integration delivers it (events/api/)."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
               "Idempotency-Key": str(uuid.uuid4())}
    return {
        "resource": "/{proxy+}", "path": "/v1/usage-events", "httpMethod": "POST",
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "v1/usage-events"}, "stageVariables": None,
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "live", "path": "/v1/usage-events",
                           "httpMethod": "POST", "resourcePath": "/{proxy+}", "identity": {"sourceIp": "127.0.0.1"}},
        "body": json.dumps({"events": events}), "isBase64Encoded": False,
    }


# -- the platform -------------------------------------------------------------------------------

@contextlib.contextmanager
def platform(transport: str):
    """The stack deployed into moto in this process; yields the admin API key. `server`: the
    local runtime (moto's threaded server, boto3 over HTTP on loopback, as bench_bill_run.py);
    `mock`: moto's in-memory backends behind `mock_aws` (no HTTP at all), the same template
    deployed with the local runtime's deploy steps."""
    if transport == "server":
        from shared.local.runtime import LocalRuntime

        runtime = LocalRuntime(clock=CLOCK, port=None).start()
        try:
            yield runtime.api_key
        finally:
            runtime.stop()
        return
    import tempfile

    import boto3
    from moto import mock_aws

    from shared.adapters.settings import settings
    from shared.local import cfn
    from shared.local.clock import LocalClock, parse_instant
    from shared.local.deploy import REGION, deploy, publish_assets, synthesize
    from shared.services.auth import ensure_api_key
    from shared.services.wiring import build_ports, default_ports
    from stacks.app import build_app

    key = "sk_local_bench_ingest"
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory() as tmp, mock_aws():
            os.environ.pop("AWS_ENDPOINT_URL", None)
            os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "BILLING_LOCAL": "1",
                               "BILLING_CLOCK_FILE": f"{tmp}/clock"})
            LocalClock(f"{tmp}/clock").set(parse_instant(CLOCK))
            cfn.apply()
            template, manifest, assembly = synthesize(build_app, "BillingStack")
            publish_assets(boto3.client("s3"), boto3.client("ssm"), manifest, assembly)
            deployment = deploy(boto3.client("cloudformation"), "BillingStack", template)
            functions = boto3.client("lambda")
            for fn in deployment.of_type("AWS::Lambda::Function"):
                config = functions.get_function_configuration(FunctionName=fn.physical_id)
                os.environ.update(config.get("Environment", {}).get("Variables", {}))
            # no Lambda runs behind mock_aws: the book's events (webhooks) are not published
            os.environ.pop("EVENT_BUS_NAME")
            settings.cache_clear()
            default_ports.cache_clear()
            ensure_api_key(build_ports(), key, role="admin", name="bench")
            yield key
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()
        default_ports.cache_clear()


# -- the book and the batches ------------------------------------------------------------------

def make_book(ports, subscriptions: int) -> list[str]:
    """One metric, one plan with a usage charge, `subscriptions` contracts; their external ids."""
    from shared.services.catalog import create_customer, create_metric, create_plan, default_entity
    from shared.services.context import Actor
    from shared.services.requests.catalog import CustomerCreate, MetricCreate, PlanCreate
    from shared.services.requests.contracts import SubscriptionCreate
    from shared.services.subscriptions import create_subscription

    actor = Actor("bench", "admin")
    default_entity(ports)
    create_metric(ports, actor, MetricCreate(code=METRIC, name="API calls", field="quantity"))
    create_plan(ports, actor, PlanCreate(code="api", name="API", currency="USD", charges=[
        {"code": "calls", "name": "API calls", "type": "usage", "model": "per_unit", "metric_code": METRIC,
         "timing": "in_arrears", "price": "0.001"}]))
    refs = []
    for number in range(subscriptions):
        ref = f"BENCH-{number:03d}"
        customer = create_customer(ports, actor, CustomerCreate(
            name=f"Bench {ref}", email=f"ap-{number}@bench.example", external_id=ref, country="US",
            region="US-CA", currency="USD"))
        create_subscription(ports, actor, SubscriptionCreate(customer_id=customer.id, plan_code="api",
                                                             external_id=f"API-{ref}", start_date=date(2025, 3, 1)))
        refs.append(f"API-{ref}")
    return refs


def batches(refs: list[str], count: int, duplicates: int):
    """`count` batches of BATCH events: new ones, then `duplicates` ids of the previous batch."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    previous: list[dict] = []
    serial = 0
    for _ in range(count):
        fresh = []
        for _ in range(BATCH - (duplicates if previous else 0)):
            serial += 1
            fresh.append({"transaction_id": f"tx-{serial:08d}", "external_subscription_id": refs[serial % len(refs)],
                          "metric_code": METRIC,
                          "timestamp": (start + timedelta(seconds=serial)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "properties": {"quantity": str(1 + serial % 50)}})
        batch = fresh + previous[:duplicates]
        yield batch, fresh
        previous = fresh


# -- measuring ---------------------------------------------------------------------------------

def send(handler, api_key: str, batch: list[dict], expected_new: int) -> float:
    event = proxy_event(api_key, batch)
    began = time.perf_counter()
    response = handler(event, Context())
    wall = time.perf_counter() - began
    body = json.loads(response["body"])
    if response["statusCode"] != 200 or body.get("accepted") != expected_new or body.get("rejected") or \
            body.get("duplicates") != len(batch) - expected_new:
        raise SystemExit(f"unexpected response {response['statusCode']}: {json.dumps(body)[:500]}")
    return wall


class Floor:
    """The batch's new usage items, as the platform lays them out, under FLOOR# keys."""

    def __init__(self, ports):
        import boto3

        self.repo, self.table = ports.repo, ports.settings.billing_table
        self.client = boto3.client("dynamodb")  # as DynamoStore makes its own
        self.subs = {}
        for sub in ports.repo.list_subscriptions(1000, None)[0]:
            self.subs[sub.external_id] = sub

    def items(self, fresh: list[dict]) -> list[dict]:
        from shared.billing.models import UsageEvent

        received = datetime(2025, 3, 20, tzinfo=UTC)
        items = []
        for raw in fresh:
            sub = self.subs[raw["external_subscription_id"]]
            event = UsageEvent(transaction_id=raw["transaction_id"], subscription_id=sub.id,
                               customer_id=sub.customer_id, metric_code=raw["metric_code"],
                               timestamp=datetime.fromisoformat(raw["timestamp"]), properties=raw["properties"],
                               received_at=received)
            attrs = self.repo.usage_item(event).to_dynamo()
            for name in ("pk", "gsi1pk"):
                attrs[name] = {"S": f"FLOOR#{attrs[name]['S']}"}
            items.append(attrs)
        return items

    def write(self, items: list[dict]) -> float:
        requests = [[{"PutRequest": {"Item": i}} for i in items[s:s + 25]] for s in range(0, len(items), 25)]
        began = time.perf_counter()
        for chunk in requests:
            pending = {self.table: chunk}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return time.perf_counter() - began


@contextlib.contextmanager
def timed_aws_calls():
    """Counts and times the boto3 calls the handler makes meanwhile (from this thread or the
    `store` pool of --try concurrent; not the runtime's pollers), by operation: {op: [count, s]}."""
    from botocore.client import BaseClient

    calls: dict[str, list] = {}
    lock = threading.Lock()
    make_api_call = BaseClient._make_api_call
    caller = threading.current_thread()

    def timed(self, operation_name, api_params):
        thread = threading.current_thread()
        if thread is not caller and not thread.name.startswith("store"):
            return make_api_call(self, operation_name, api_params)
        began = time.perf_counter()
        try:
            return make_api_call(self, operation_name, api_params)
        finally:
            with lock:
                entry = calls.setdefault(f"{self.meta.service_model.service_name}:{operation_name}", [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - began

    BaseClient._make_api_call = timed
    try:
        yield calls
    finally:
        BaseClient._make_api_call = make_api_call


def top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def profile_batches(handler, api_key: str, stream, count: int) -> None:
    """Where a batch's wall time goes: the AWS calls by operation (wall time of each request, as
    the handler waits for it), then cProfile of the handler's own thread (the same batches)."""
    walls = []
    with timed_aws_calls() as calls:
        for _ in range(count):
            batch, fresh = next(stream)
            walls.append(send(handler, api_key, batch, len(fresh)))
    wall = sum(walls)
    print(f"\n{count} more batches, {wall / count:.3f}s each; AWS calls per batch (wall time spent waiting):")
    print(f"{'operation':<34}{'calls':>7}{'ms':>9}{'ms/call':>9}{'share':>7}")
    for name, (number, seconds) in sorted(calls.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<34}{number / count:>7.0f}{seconds * 1000 / count:>9.1f}{seconds * 1000 / number:>9.2f}"
              f"{seconds / wall:>7.0%}")
    aws = sum(seconds for _, seconds in calls.values())
    print(f"{'all AWS calls':<34}{sum(n for n, _ in calls.values()) / count:>7.0f}{aws * 1000 / count:>9.1f}"
          f"{'':>9}{aws / wall:>7.0%}")
    print(f"{'the handler itself (Python)':<34}{'':>7}{(wall - aws) * 1000 / count:>9.1f}{'':>9}"
          f"{(wall - aws) / wall:>7.0%}")
    if aws > wall:
        print("(the calls overlapped: --try concurrent sends them from several threads)")
    profile = cProfile.Profile()
    for _ in range(count):
        batch, fresh = next(stream)
        event = proxy_event(api_key, batch)
        profile.enable()
        handler(event, Context())
        profile.disable()
    print("\ncProfile of the handler's thread (AWS calls show as socket waits), by cumulative time:")
    print(top(profile, "cumulative", 60))
    print("by own time:")
    print(top(profile, "tottime", 25))


# -- the proposed changes, as in-process patches (measured with --try; not the platform's code) --

def try_concurrent_requests(workers: int = 4) -> None:
    """DynamoStore.existing and .batch_put: their independent requests (100 keys, 25 items) sent
    from `workers` threads instead of one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.adapters.dynamodb import DynamoStore, Item, RetryableError

    pool = ThreadPoolExecutor(workers, thread_name_prefix="store")

    def existing(self, keys):
        keys = list(dict.fromkeys(keys))

        def one(chunk):
            request = {self.table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk],
                                    "ConsistentRead": True, "ProjectionExpression": "pk, sk"}}
            found = set()
            while request:
                response = self._call(self.client.batch_get_item, RequestItems=request)
                found |= {(a["pk"]["S"], a["sk"]["S"]) for a in response["Responses"].get(self.table, [])}
                request = response.get("UnprocessedKeys") or {}
            return found

        return set().union(*pool.map(one, [keys[s:s + 100] for s in range(0, len(keys), 100)]))

    def batch_put(self, items):
        items: list[Item] = list(items)

        def one(chunk):
            request = {self.table: [{"PutRequest": {"Item": i.to_dynamo()}} for i in chunk]}
            for _ in range(8):
                request = self._call(self.client.batch_write_item, RequestItems=request).get("UnprocessedItems")
                if not request:
                    return
            raise RetryableError("DynamoDB left usage writes unprocessed after 8 attempts")

        list(pool.map(one, [items[s:s + 25] for s in range(0, len(items), 25)]))

    DynamoStore.existing, DynamoStore.batch_put = existing, batch_put


# batched subscription reads, a batched re-read and Config(parameter_validation=False) were
# measured here first and are now the platform's code.
PROPOSALS = {"concurrent": try_concurrent_requests}


# -- main ----------------------------------------------------------------------------------------

def main() -> None:
    logging.getLogger("moto").addFilter(
        lambda record: not record.getMessage().startswith("No Moto CloudFormation support"))
    warnings.filterwarnings("ignore", "No application metrics", UserWarning)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=7, help="measured batches of 1,000 (default 7, at least 5)")
    parser.add_argument("--duplicates", type=int, default=100, help="repeated ids per batch (default 100 = 10%%)")
    parser.add_argument("--subscriptions", type=int, default=20, help="contracts the events are spread over")
    parser.add_argument("--transport", choices=("server", "mock"), default="server",
                        help="server: the local runtime's moto server (default); mock: mock_aws, no HTTP")
    parser.add_argument("--stock-moto", action="store_true", help="moto as shipped (see bench_bill_run.lean_moto)")
    parser.add_argument("--profile", action="store_true",
                        help="then time the AWS calls of more batches by operation, and cProfile the handler")
    parser.add_argument("--profile-batches", type=int, default=3, help="batches for each of the two (default 3)")
    parser.add_argument("--try", dest="proposals", default="", metavar="P1,P2",
                        help=f"measure with proposed changes patched in: {', '.join(PROPOSALS)} or all")
    parser.add_argument("--log", type=Path, default=ROOT / "out" / "bench" / "ingest-functions.log",
                        help="where the handler's stdout goes (Powertools logs and metrics)")
    args = parser.parse_args()
    if args.batches < 5:
        parser.error("--batches must be at least 5")
    args.proposals = list(PROPOSALS) if args.proposals == "all" else [p for p in args.proposals.split(",") if p]
    if unknown := set(args.proposals) - set(PROPOSALS):
        parser.error(f"unknown proposals {sorted(unknown)}")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    global print
    print = functools.partial(builtins.print, file=console, flush=True)  # noqa: A001
    with open(args.log, "w") as function_logs:
        sys.stdout = function_logs
        try:
            bench(args)
        finally:
            sys.stdout = console


def bench(args) -> None:
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}  ({os.cpu_count()} CPUs)")
    if not args.stock_moto:
        lean_moto()
    print(f"moto: {'as shipped' if args.stock_moto else 'lean (bench_bill_run.lean_moto)'}, "
          f"{'threaded server over HTTP' if args.transport == 'server' else 'mock_aws, in memory'}")
    began = time.perf_counter()
    with platform(args.transport) as api_key:
        print(f"platform up in {time.perf_counter() - began:.1f}s")
        from functions.api.handler import handler
        from shared.services.wiring import build_ports

        ports = build_ports()
        refs = make_book(ports, args.subscriptions)
        for name in args.proposals:
            PROPOSALS[name]()
        print("proposed changes patched in: " + (", ".join(args.proposals) or "none (the platform as it is)"))
        floor = Floor(ports)
        total = 1 + args.batches + (2 * args.profile_batches if args.profile else 0)
        stream = batches(refs, total, args.duplicates)

        batch, fresh = next(stream)
        warm = send(handler, api_key, batch, len(fresh))
        floor.write(floor.items(fresh))
        print(f"warm-up batch: {warm:.2f}s")

        rows = []
        for _ in range(args.batches):
            batch, fresh = next(stream)
            wall = send(handler, api_key, batch, len(fresh))
            floor_s = floor.write(floor.items(fresh))
            rows.append((wall, floor_s))
            print(f"  batch: {wall:.3f}s ({BATCH / wall:,.0f} events/s); floor {floor_s:.3f}s "
                  f"({BATCH / floor_s:,.0f} events/s); ratio {wall / floor_s:.2f}")
        report(args, rows)

        if args.profile:
            profile_batches(handler, api_key, stream, args.profile_batches)


def report(args, rows: list[tuple[float, float]]) -> None:
    walls, floors = [w for w, _ in rows], [f for _, f in rows]
    rate, floor_rate = BATCH / statistics.median(walls), BATCH / statistics.median(floors)
    ratio = statistics.median(w / f for w, f in rows)
    print(f"\n{'':<24}{'median s':>10}{'events/s':>11}")
    print(f"{'POST /v1/usage-events':<24}{statistics.median(walls):>10.3f}{rate:>11,.0f}")
    print(f"{'floor (batch_write_item)':<24}{statistics.median(floors):>10.3f}{floor_rate:>11,.0f}")
    print(f"ratio (median of per-batch wall / floor): {ratio:.2f}")
    print(f"{args.batches} batches of {BATCH} ({args.duplicates} duplicates each) over {args.subscriptions} "
          f"subscriptions; the floor writes each batch's {BATCH - args.duplicates} new items")
    verdict = [f"events/s {'meets' if rate >= TARGET_RATE else 'MISSES'} the {TARGET_RATE:,} target",
               f"ratio {'meets' if ratio <= TARGET_RATIO else 'MISSES'} the {TARGET_RATIO} target"]
    print("; ".join(verdict))


if __name__ == "__main__":
    main()
