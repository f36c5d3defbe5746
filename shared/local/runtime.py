"""The whole platform on one machine: moto's server, the CDK stack deployed into it, handlers
dispatched in-process, rules delivered, queues polled, and a clock that fires schedules.

    with LocalRuntime(clock="2025-04-01") as rt:
        rt.invoke("api", event)
        rt.advance_clock("2025-05-01T00:00:00Z")

One runtime per process at a time: moto's backends and the patches are process-wide.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer
from moto.ses.models import RawMessage, ses_backends

from . import cfn, dispatch, dynamodb, events, persistence, s3, scheduler, ses
from .aws import Clients
from .clock import LocalClock, parse_instant
from .deploy import ACCOUNT, REGION, Deployment, deploy, publish_assets, synthesize
from .http import HttpAdapter
from .pollers import Mapping, SqsPoller, detach_moto_trigger
from .streams import StreamMapping, StreamPoller
from .streams import detach_moto_trigger as detach_stream_trigger

log = logging.getLogger("shared.local")
REPO_ROOT = Path(__file__).resolve().parents[2]
# One clock file per process, like the port: settings read once per "container" keep it.
CLOCK_DIR = Path(tempfile.gettempdir()) / f"billing-local-{os.getpid()}"
_port: int | None = None
FUNCTION = "AWS::Lambda::Function"
# How long stopping waits for a poller busy with a message: a ceiling, not a pause (it returns as soon as
# the poller is done). Generous: a loaded machine can take many seconds per handler.
STOP_CEILING_SECONDS = float(os.environ.get("BILLING_LOCAL_STOP_TIMEOUT", "120"))
WARM_UP = {"s3": "list_buckets", "ssm": "describe_parameters", "cloudformation": "list_stacks",
           "lambda": "list_functions", "stepfunctions": "list_state_machines",
           "dynamodb": "list_tables", "sqs": "list_queues", "events": "list_event_buses",
           "scheduler": "list_schedules", "ses": "list_identities", "iam": "list_roles"}


class LambdaInvokeError(Exception):
    """A function error from `LocalRuntime.invoke`; `payload` is what Lambda returned."""

    def __init__(self, payload: dict):
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload
        self.error_type = payload.get("errorType")


class LocalRuntime:
    _active: LocalRuntime | None = None

    def __init__(self, *, port: int | None = 0, moto_port: int = 0,
                 data_dir: str | Path | None = None,
                 clock: str | datetime | None = None, api_key: str | None = None,
                 time_scale: float = 1.0, app_factory: Callable | None = None,
                 stack_name: str = "BillingStack", register_api_key: bool = True):
        """`port`: the REST API's (0: any free port, None: no HTTP); `time_scale` shortens
        AWS's waits (visibility timeouts, async retries) for tests; `app_factory` replaces
        `stacks.app.build_app` (tests use a small app)."""
        self.port = port
        self.moto_port = moto_port
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else None
        saved_clock, saved_key = persistence.saved(self.data_dir) if data_dir else (None, None)
        self.initial_clock = (parse_instant(clock) if isinstance(clock, str) else clock) or \
            saved_clock
        self.api_key = api_key or os.environ.get("BILLING_LOCAL_API_KEY") or saved_key or \
            f"sk_local_{secrets.token_hex(16)}"
        self.time_scale = time_scale
        self.app_factory = app_factory
        self.stack_name = stack_name
        self.register_api_key = register_api_key
        self.clock = LocalClock(CLOCK_DIR / "clock")
        self.env: dict[str, str] = {}
        self.deployment: Deployment | None = None
        self.started_in: float | None = None
        self.timings: dict[str, float] = {}  # seconds per start-up phase
        self._server: ThreadedMotoServer | None = None
        self.http: HttpAdapter | None = None
        self._stop = threading.Event()
        self._pollers: list[SqsPoller | StreamPoller] = []
        self._stream_mappings: list[StreamMapping] = []
        self._pool: ThreadPoolExecutor | None = None
        self._saved_env: dict[str, str | None] = {}
        self._advance_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        """Start moto, deploy the stack, start the pollers, the clock and the REST API. When any step
        fails, everything started so far is stopped and the runtime unregistered before the error
        is raised, so another runtime can start in this process."""
        if LocalRuntime._active is not None:
            raise RuntimeError("a LocalRuntime is already running in this process")
        LocalRuntime._active = self
        began = time.perf_counter()
        try:
            with self._timed("moto"):
                self._start_aws()
            self._deploy()
            self._start_clock()
            if self.data_dir:
                with self._timed("restore"):
                    counts = persistence.restore(self.clients, self.deployment, self.data_dir)
                log.info("restored from %s: %s", self.data_dir, counts)
            s3.configure_notifications(self.clients, self.deployment)  # after the restore: no re-import
            self._start_stream_pollers()  # after the restore too: restored items are no new writes
            if self.register_api_key:
                self._register_api_key()
            if self.port is not None:
                self.http = HttpAdapter(self, self.port)
                self.http.start()
        except BaseException:
            try:
                self.stop(snapshot=False)
            except Exception:  # the start-up error is the one to report; the teardown's is logged
                log.exception("the local runtime failed to start and did not stop cleanly")
            raise
        self.started_in = time.perf_counter() - began
        log.info("local platform up in %.1f s (%s)", self.started_in,
                 ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        return self

    def stop(self, snapshot: bool = True) -> None:
        """Stop what this runtime started. Every step runs even when one before it failed, and the
        runtime is unregistered last whatever happened; the first failure is raised afterwards."""
        if LocalRuntime._active is not self:
            return
        failures: list[Exception] = []

        def attempt(step: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as error:
                log.warning("stopping the local runtime: %s failed: %s", step, error)
                failures.append(error)

        try:
            for poller in self._pollers:  # what was committed reaches the bus before the state is saved
                if isinstance(poller, StreamPoller) and not poller.caught_up(timeout=5):
                    log.warning("%s did not catch up before the stop", poller.name)
            if snapshot and self.data_dir and self.deployment:
                attempt("snapshot", self._snapshot)
            self._stop.set()
            if self.http:
                attempt("REST API", self.http.stop)
            attempt("event delivery", events.clear)
            attempt("SES events", ses.clear)
            for poller in self._pollers:
                attempt(poller.name, lambda poller=poller: _join(poller, STOP_CEILING_SECONDS))
            if self._pool:
                attempt("async pool", lambda: self._pool.shutdown(wait=False, cancel_futures=True))
            if self._server:
                attempt("moto reset", moto_api_backend.reset)  # in process: no HTTP call to time out
                attempt("moto server", self._server.stop)
            attempt("environment", self._restore_env)
            attempt("clock file", self._remove_clock_file)
        finally:
            LocalRuntime._active = None
        if failures:
            raise failures[0]

    def _snapshot(self) -> None:
        counts = persistence.snapshot(self.clients, self.deployment, self.data_dir, self.clock, self.api_key)
        log.info("saved to %s: %s", self.data_dir, counts)

    def _remove_clock_file(self) -> None:
        self.clock.path.unlink(missing_ok=True)
        with suppress(OSError):
            self.clock.path.parent.rmdir()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests and the adapters use -------------------------------------------------

    def invoke(self, function: str, event) -> object:
        """Invoke a function of the stack (by construct id, logical id, name or handler folder)
        through moto's Invoke API, i.e. the same dispatch as every other trigger."""
        response = self.clients("lambda").invoke(FunctionName=self.function_name(function),
                                                 Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or "null")
        if "FunctionError" in response:
            raise LambdaInvokeError(payload)
        return payload

    def function_name(self, name: str) -> str:
        for fn in self.deployment.of_type(FUNCTION):
            handler = fn.properties.get("Handler") or \
                fn.properties.get("ImageConfig", {}).get("Command", [""])[0]
            folder = handler.split(".")[1] if handler.startswith("functions.") else None
            if name in (fn.logical_id, fn.physical_id, fn.construct_id, folder):
                return fn.physical_id
        raise KeyError(f"no function {name!r} in {self.stack_name}")

    def physical_id(self, logical_or_construct_id: str) -> str:
        for resource in self.deployment.resources.values():
            if logical_or_construct_id in (resource.logical_id, resource.construct_id):
                return resource.physical_id
        raise KeyError(logical_or_construct_id)

    @property
    def api_url(self) -> str:
        return f"{self.http.url}/v1"

    def sent_emails(self) -> list[bytes]:
        """The raw MIME of every email sent through SES (SendRawEmail)."""
        backend = ses_backends[ACCOUNT][REGION]
        return [m.raw_data.encode() for m in backend.sent_messages if isinstance(m, RawMessage)]

    def clock_now(self) -> datetime:
        return self.clock.now()

    def advance_clock(self, to: str | datetime) -> list[dict]:
        target = parse_instant(to) if isinstance(to, str) else to
        with self._advance_lock:
            return scheduler.advance(self.clients, self.clock, target, ACCOUNT, REGION, self._stop)

    def info(self) -> dict:
        """What the runtime file holds (see cli.py)."""
        return {"api_url": self.api_url if self.http else None, "aws_endpoint": self.endpoint,
                "env": dict(self.env), "api_key": self.api_key,
                "outputs": self.deployment.outputs, "pid": os.getpid(),
                "clock_file": str(self.clock.path)}

    # -- start-up steps ------------------------------------------------------------------

    def _start_aws(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
        warnings.filterwarnings("ignore", "Tried to parse", UserWarning)  # moto logs it too
        port = self.moto_port or _process_port()
        self._server = _MotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._set_env({
            "MOTO_PORT": str(port),  # moto's Step Functions executor calls back on it
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "BILLING_LOCAL": "1",
            "BILLING_CLOCK_FILE": str(self.clock.path),
        })
        # before anything exists: machines created earlier never execute (in process, as POST /moto-api/config)
        moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})
        self.clients = Clients(self.endpoint, REGION)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="local-async")
        cfn.apply()
        dispatch.apply(str(REPO_ROOT))
        dynamodb.apply()
        events.apply(self.clients, self._pool.submit, self._stop.wait, self.time_scale)
        s3.apply()

    def _deploy(self) -> None:
        warm_up = threading.Thread(target=self._warm_up, daemon=True)
        warm_up.start()
        try:
            with self._timed("synth"):
                build_app = self.app_factory or _stack_app()
                template, manifest, assembly = synthesize(build_app, self.stack_name)
        finally:
            warm_up.join()
        with self._timed("deploy"):
            publish_assets(self.clients("s3"), self.clients("ssm"), manifest, assembly)
            self.deployment = deploy(self.clients("cloudformation"), self.stack_name, template)
        for identity in self.deployment.of_type("AWS::SES::EmailIdentity"):
            address = identity.properties["EmailIdentity"]
            if "@" in address:
                self.clients("ses").verify_email_identity(EmailAddress=address)
            else:
                self.clients("ses").verify_domain_identity(Domain=address)
        configuration_sets = [r.physical_id for r in self.deployment.of_type("AWS::SES::ConfigurationSet")]
        ses.apply(self._pool.submit, lambda entries: self.clients("events").put_events(Entries=entries),
                  self.clock.now, configuration_sets[0] if configuration_sets else None, ACCOUNT, REGION)
        self._set_env(self._function_env())
        self._start_pollers()

    def _warm_up(self) -> None:
        """While CDK synthesizes (in node): load botocore's and moto's service modules."""
        for service, call in WARM_UP.items():
            try:
                getattr(self.clients(service), call)()
            except Exception:  # only a head start; the deploy reports real problems
                log.debug("warm-up of %s failed", service, exc_info=True)

    def _function_env(self) -> dict[str, str]:
        """The functions' variables, merged: the contract says one key has one value."""
        merged: dict[str, str] = {}
        for fn in self.deployment.of_type(FUNCTION):
            config = self.clients("lambda").get_function_configuration(
                FunctionName=fn.physical_id)
            for key, value in config.get("Environment", {}).get("Variables", {}).items():
                if merged.setdefault(key, value) != value:
                    raise RuntimeError(f"{key} differs between functions: {merged[key]!r} vs "
                                       f"{value!r} ({fn.logical_id}); it is process-wide here")
        self.env = merged
        return merged

    def _start_pollers(self) -> None:
        for resource in self.deployment.of_type("AWS::Lambda::EventSourceMapping"):
            esm = self.clients("lambda").get_event_source_mapping(UUID=resource.physical_id)
            if ":dynamodb:" in esm["EventSourceArn"]:  # polled from the start (after a restore)
                stream = StreamMapping.from_esm(esm)
                detach_stream_trigger(stream, ACCOUNT, REGION)  # before the first write reaches the stream
                if esm["State"] == "Enabled":
                    self._stream_mappings.append(stream)
                continue
            if ":sqs:" not in esm["EventSourceArn"]:
                continue
            mapping = Mapping.from_esm(esm)
            detach_moto_trigger(mapping, ACCOUNT, REGION)
            if esm["State"] == "Enabled":
                poller = SqsPoller(mapping, self.clients, self._stop, self.time_scale)
                poller.start()
                self._pollers.append(poller)

    def _start_stream_pollers(self) -> None:
        """DynamoDB Streams event sources (the outbox): see shared/local/streams.py."""
        for mapping in self._stream_mappings:
            poller = StreamPoller(mapping, self.clients, self._stop, self.time_scale, ACCOUNT, REGION)
            poller.start()
            self._pollers.append(poller)

    def _start_clock(self) -> None:
        self.clock.set(self.initial_clock or datetime.now(UTC).replace(microsecond=0))

    def _register_api_key(self) -> None:
        """The local key is an admin key of the platform (registered by the service layer)."""
        from shared.services.auth import ensure_api_key
        from shared.services.wiring import build_ports

        ensure_api_key(build_ports(), self.api_key, role="admin", name="local")

    @contextmanager
    def _timed(self, phase: str):
        began = time.perf_counter()
        yield
        self.timings[phase] = time.perf_counter() - began

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()


class _MotoServer(ThreadedMotoServer):
    """moto's threaded server, whose `start()` raises when the server cannot be made (a port taken
    meanwhile) instead of waiting forever for a ready signal that never comes."""

    _error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            super()._server_entry()
        except BaseException as error:
            self._error = error
            self._server_ready_event.set()

    def start(self) -> None:
        super().start()
        if self._error is not None:
            raise RuntimeError(f"moto's server did not start: {self._error}") from self._error

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            super().stop()


def _join(thread: threading.Thread, ceiling: float) -> None:
    thread.join(timeout=ceiling)
    if thread.is_alive():
        raise RuntimeError(f"{thread.name} still running after {ceiling:.0f} s")


def _stack_app() -> Callable:
    from stacks.app import build_app

    return build_app


def _process_port() -> int:
    """A free port, the same for every runtime of this process while it stays free: handler
    modules keep clients (like a warm Lambda container) that must find the endpoint again."""
    global _port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", _port or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        _port = sock.getsockname()[1]
    return _port
