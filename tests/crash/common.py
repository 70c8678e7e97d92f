"""Settings, counters, Postgres through psql and HTTP: what every part of the crash test uses."""

from __future__ import annotations
import http.client
import json
import subprocess
import threading
from collections import Counter

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PSQL = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]

# How long one logical operation may take, retries included. A claim whose
# process died between COMMIT and storing the answer is "in flight" for 30 s
# (docs/idempotency.md), then "applied, answer lost".
OP_DEADLINE = 120.0
REQUEST_TIMEOUT = 30.0

MAX_USERS = 14          # per thread
MAX_ORGS = 6            # per thread
MAX_LIVE_SESSIONS = 4   # per user
ROLES = ("member", "admin")
# Kinds whose request --sabotage sends twice under two keys.
SABOTAGED = ("sign_in", "create_key", "add_member", "disable")
KEY_SCOPES = (["crash:read"], ["crash:read", "crash:write"], ["vouch:keys:verify"],
              ["vouch:org:admin"])


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------
# Counters shared by every thread
# --------------------------------------------------------------------------

class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.c: Counter = Counter()
        self.statuses: Counter = Counter()
        self.failures: list[str] = []

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.c[key] += n

    def status(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def fail(self, msg: str) -> None:
        with self.lock:
            self.failures.append(msg)
            if len(self.failures) <= 40:
                log(f"FAILURE: {msg}")


STATS = Stats()
# Every password the load threads made up: vouch's log must hold none of them.
PASSWORDS: set[str] = set()


# --------------------------------------------------------------------------
# Postgres through psql
# --------------------------------------------------------------------------

def psql(db: str, sql: str, check: bool = True) -> list[str]:
    out = subprocess.run(PSQL + ["-d", db, "-c", sql], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}\n{sql}")
    return [line for line in out.stdout.splitlines() if line != ""]


def psql_json(db: str, select: str) -> list[dict]:
    return [json.loads(line) for line in psql(db, f"SELECT row_to_json(t)::text FROM ({select}) t")]


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class ConnectionFailed(Exception):
    pass


def http_call(port: int, method: str, path: str, body: bytes | None = None,
              token: str | None = None, idem: str | None = None, rid: str | None = None,
              timeout: float = REQUEST_TIMEOUT):
    """One request on a fresh connection: (status, headers, json or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Connection": "close"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if idem:
        headers["Idempotency-Key"] = idem
    if rid:
        headers["X-Request-Id"] = rid
    try:
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        raw = res.read()
        hdrs = {k.lower(): v for k, v in res.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        raise ConnectionFailed(f"{type(e).__name__}: {e}") from e
    finally:
        conn.close()
    try:
        js = json.loads(raw) if raw else None
    except ValueError:
        js = None
    return res.status, hdrs, js


def error_of(js) -> tuple[str | None, str]:
    if isinstance(js, dict) and isinstance(js.get("error"), dict):
        return js["error"].get("code"), js["error"].get("message", "")
    return None, ""
