"""One DynamoDB request at a time: moto's TransactWriteItems is not safe under concurrency.

moto copies the table for a transaction and writes it back, so two concurrent transactions
lose updates (measured: duplicate invoice numbers). DynamoDB serializes conflicting
transactions itself; the local runtime serializes every request, which is stricter and
cheap at local volumes.
"""

from __future__ import annotations

import threading

from moto.dynamodb.responses import DynamoHandler

LOCK = threading.Lock()


def apply() -> None:
    if getattr(DynamoHandler.call_action, "local_patch", False):
        return
    moto_call_action = DynamoHandler.call_action

    def call_action(self):
        with LOCK:
            return moto_call_action(self)

    call_action.local_patch = True
    DynamoHandler.call_action = call_action
