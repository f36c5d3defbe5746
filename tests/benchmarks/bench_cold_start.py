"""Cold-start import time of every handler module, each in a fresh interpreter.

Prints the median over --runs of the wall time to import the module, beside a bare
Powertools handler (Logger, Tracer, Metrics and nothing else) measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ("from aws_lambda_powertools import Logger, Metrics, Tracer\n"
            "logger, tracer, metrics = Logger(), Tracer(), Metrics()\n")
HEAVY = ("weasyprint", "aws_cdk", "moto")


def timed_import(code: str) -> tuple[float, set[str]]:
    probe = ("import time, sys\nstart = time.perf_counter()\n" + code +
             "\nelapsed = time.perf_counter() - start\n"
             f"print(elapsed, ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1",
                              "POWERTOOLS_SERVICE_NAME": "billing", "POWERTOOLS_METRICS_NAMESPACE": "Billing"})
    seconds, heavy = out.stdout.strip().split(" ") if " " in out.stdout.strip() else (out.stdout.strip(), "")
    return float(seconds), {h for h in heavy.split(",") if h}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    modules = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
    rows = [("bare Powertools handler", BASELINE)] + [
        (f"functions.{m}.handler", f"import functions.{m}.handler") for m in modules]
    baseline = None
    print(f"{'module':<44}{'median ms':>10}{'ratio':>8}  heavy imports")
    for name, code in rows:
        results = [timed_import(code) for _ in range(args.runs)]
        median = statistics.median(r[0] for r in results) * 1000
        baseline = baseline or median
        heavy = ",".join(sorted(set().union(*(r[1] for r in results)))) or "-"
        print(f"{name:<44}{median:>10.0f}{median / baseline:>8.2f}  {heavy}")


if __name__ == "__main__":
    main()
