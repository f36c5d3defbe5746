"""Shared setup for the CDK tests (marked `infra`)."""

from __future__ import annotations

import os

# jsii prints a banner on stderr for an end-of-life Node; the app works the same.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
