# The two commands a newcomer needs (see README.md). Both install what they need first.
.PHONY: demo test setup local bench

setup:
	@bash .ci/setup

demo: setup  ## run the whole platform locally and bill a sample book
	.venv/bin/billing demo --out out/demo

test: setup  ## run every test suite
	.venv/bin/python -m pytest -n 2 --dist loadfile -q

local: setup  ## start the local platform and keep it running
	.venv/bin/billing local up

bench: setup  ## measure the bill run, cold starts and the storage floor
	.venv/bin/python tests/benchmarks/bench_bill_run.py
