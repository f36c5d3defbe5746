"""boto3 clients for the local endpoint, created once and shared by the runtime's threads."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

# Handlers may run for minutes (bill runs); the local AWS does not throttle, so no retries:
# a retry would replay a side effect (e.g. deliver an event twice).
_CONFIG = Config(retries={"total_max_attempts": 1}, read_timeout=900, connect_timeout=5,
                 max_pool_connections=50)


class Clients:
    def __init__(self, endpoint: str, region: str = "us-east-1"):
        self.endpoint = endpoint
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str):
        with self._lock:  # client creation is not thread-safe; use is
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.endpoint, config=_CONFIG)
            return self._clients[service]
