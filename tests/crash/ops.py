"""Logical operations and the runner that sends each until it gets an answer."""

from __future__ import annotations
import random
import threading
import time
from dataclasses import dataclass

from common import (
    ConnectionFailed, OP_DEADLINE, SABOTAGED, STATS, error_of, http_call,
)

# --------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------

@dataclass(eq=False)
class Op:
    """One logical operation: the same request until it gets an answer."""
    id: str
    kind: str
    method: str
    path: str
    body: bytes | None
    token: str | None
    expect: tuple
    info: dict
    attempts: int = 0
    conn_errors: int = 0
    unavailable: int = 0
    in_flight: int = 0
    outcome: str = ""        # answered | lost | lost_delete | gave_up
    status: int | None = None
    replayed: bool = False
    resp: object = None
    code: str | None = None

    @property
    def applied(self) -> bool:
        """Whether the command must be in the log (its answer said so, or was lost)."""
        if self.outcome in ("lost", "lost_delete"):
            return True
        if self.outcome != "answered" or self.status not in self.expect:
            return False
        return 200 <= self.status < 300 or self.kind == "sign_in_fail"


class Runner:
    """Sends an op's request again on connection errors, 503s and 409 "in flight"."""

    def __init__(self, port: int, sabotage: float = 0.0, seed: int = 0) -> None:
        self.port = port
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.sabotage = sabotage
        self.sabotage_rng = random.Random(seed)

    def run(self, op: Op) -> Op:
        with self.lock:
            self.ops.append(op)
            sabotaged = (op.kind in SABOTAGED and self.sabotage
                         and self.sabotage_rng.random() < self.sabotage)
        if sabotaged:
            # A client that retries under a new key: the command runs twice
            # (the checks must say so).
            STATS.add("sabotaged")
            try:
                http_call(self.port, op.method, op.path, op.body, token=op.token,
                          idem=op.id + "-again", rid=op.id)
            except ConnectionFailed:
                pass
        started = time.monotonic()
        delay = 0.02
        while True:
            if time.monotonic() - started > OP_DEADLINE:
                op.outcome = "gave_up"
                STATS.fail(f"{op.id} {op.kind}: no answer after {OP_DEADLINE:.0f} s "
                           f"({op.attempts} attempts)")
                return op
            op.attempts += 1
            STATS.add("requests")
            if op.attempts > 1:
                STATS.add("retries")
            try:
                status, hdrs, js = http_call(self.port, op.method, op.path, op.body,
                                             token=op.token, idem=op.id, rid=op.id)
            except ConnectionFailed:
                op.conn_errors += 1
                STATS.add("connection_errors")
                time.sleep(delay)
                delay = min(delay * 2, 0.4)
                continue
            STATS.status(status)
            code, message = error_of(js)
            if status == 503:
                op.unavailable += 1
                time.sleep(delay)
                delay = min(delay * 2, 0.4)
                continue
            if status == 409 and code == "conflict" and "in flight" in message:
                op.in_flight += 1
                STATS.add("in_flight_409")
                STATS.add("in_flight_wait_ms", 500)
                time.sleep(0.5)
                continue
            if status == 409 and code == "conflict" and "was applied" in message:
                op.outcome, op.status = "lost", status
                STATS.add("answer_lost_409")
                return op
            op.outcome, op.status, op.resp, op.code = "answered", status, js, code
            op.replayed = hdrs.get("idempotent-replayed") == "true"
            if op.replayed:
                STATS.add("replayed")
            # DELETE ignores Idempotency-Key: a retry of one that was applied
            # finds nothing left to delete.
            if (op.method == "DELETE" and op.conn_errors and status != op.expect[0]
                    and status in op.info.get("gone", ())):
                op.outcome = "lost_delete"
                STATS.add("delete_applied_before_retry")
            elif status >= 500:
                STATS.fail(f"{op.id} {op.kind}: {status} {code} (attempt {op.attempts})")
            elif status not in op.expect:
                STATS.fail(f"{op.id} {op.kind}: unexpected {status} {code}: {message} "
                           f"(attempt {op.attempts}, replayed={op.replayed})")
                STATS.add("unexpected_answers")
            return op
