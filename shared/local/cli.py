"""`billing local up` and `billing local clock show|advance`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:3000"


def add_local_commands(subparsers) -> None:
    local = subparsers.add_parser("local", help="the whole platform on this machine (no AWS, "
                                                "no Docker)")
    commands = local.add_subparsers(dest="local_command", required=True)
    up = commands.add_parser("up", help="start it; Ctrl-C stops it")
    up.add_argument("--port", type=int, default=3000, help="the REST API's port (default 3000)")
    up.add_argument("--data", help="keep the state in DIR across restarts")
    up.add_argument("--clock", help="start the clock at this ISO date/instant (default: now, "
                                    "or where --data's clock stopped)")
    up.add_argument("--moto-port", type=int, default=0, help="the AWS endpoint's port "
                                                            "(default: any free one)")
    up.set_defaults(func=cmd_up)
    clock = commands.add_parser("clock", help="the local clock of a running `local up`")
    clock_commands = clock.add_subparsers(dest="clock_command", required=True)
    show = clock_commands.add_parser("show", help="print the clock")
    advance = clock_commands.add_parser("advance", help="move it forward, firing the schedules")
    advance.add_argument("--to", required=True, help="ISO date or instant, e.g. 2025-05-01")
    for parser, func in ((show, cmd_clock_show), (advance, cmd_clock_advance)):
        parser.add_argument("--url", help=f"the platform (default: the runtime file's, or "
                                          f"{DEFAULT_URL})")
        parser.add_argument("--runtime", help="its runtime.json (default: ~/.billing)")
        parser.set_defaults(func=func)


def home() -> Path:
    return Path(os.environ.get("BILLING_HOME", Path.home() / ".billing"))


def cmd_up(args) -> None:
    from .runtime import LocalRuntime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    runtime = LocalRuntime(port=args.port, moto_port=args.moto_port, data_dir=args.data,
                           clock=args.clock)
    runtime.start()
    runtime_file = home() / "runtime.json"  # where the staff CLI looks for the running platform
    try:
        runtime_file.parent.mkdir(parents=True, exist_ok=True)
        runtime_file.write_text(json.dumps(runtime.info(), indent=2))
        print(f"local platform up in {runtime.started_in:.1f} s\n"
              f"  API:          {runtime.api_url}\n"
              f"  API key:      {runtime.api_key}\n"
              f"  AWS endpoint: {runtime.endpoint}\n"
              f"  clock:        {runtime.clock_now():%Y-%m-%dT%H:%M:%SZ}\n"
              f"  runtime file: {runtime_file}\n"
              f"Ctrl-C stops it" + (f" (state saved to {args.data})" if args.data else "."),
              flush=True)
        stopping.wait()
    finally:
        print("stopping...", flush=True)
        runtime.stop()
        runtime_file.unlink(missing_ok=True)


def cmd_clock_show(args) -> None:
    print(json.dumps(_call(args, "GET", "/v1/clock"), indent=2))


def cmd_clock_advance(args) -> None:
    print(json.dumps(_call(args, "POST", "/v1/clock/advance", {"to": args.to}), indent=2))


def _call(args, method: str, path: str, body: dict | None = None) -> dict:
    runtime_file = Path(args.runtime) if args.runtime else home() / "runtime.json"
    runtime = json.loads(runtime_file.read_text()) if runtime_file.exists() else {}
    base = args.url or (runtime.get("api_url") or DEFAULT_URL).removesuffix("/v1")
    key = os.environ.get("BILLING_LOCAL_API_KEY") or runtime.get("api_key")
    if not key:
        sys.exit("no API key: set BILLING_LOCAL_API_KEY or point --runtime at runtime.json")
    request = urllib.request.Request(
        base.rstrip("/") + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        sys.exit(f"{error.code}: {error.read().decode(errors='replace')}")
    except urllib.error.URLError as error:
        sys.exit(f"no local platform at {base} ({error.reason}): is `billing local up` running?")
