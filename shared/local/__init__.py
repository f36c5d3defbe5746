"""The local runtime: the platform on one machine, no AWS account, no Docker.

`shared.local.runtime.LocalRuntime` is the entry point; `billing local up` (cli.py) runs it.
Nothing here is imported by the handlers or by shared/billing|services|adapters.
"""
