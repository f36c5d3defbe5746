"""Shared setup for the CDK tests (marked `infra`)."""

from __future__ import annotations


