#!/usr/bin/env python3
"""Crash-safety test of vouch.

Starts `vouch serve` on a fresh database, runs a mixed write load from several
threads, SIGKILLs the process at random moments and restarts it on the same
port, database and audit key. Every logical operation has its own id, sent as
`Idempotency-Key` and as `X-Request-Id` (so each event it appends carries it
in `metadata.request_id`); on a connection error or a 503 the same request is
sent again, byte for byte, until it gets an answer. Afterwards the log, the
read models, the relay, the audit chain and `vouch replay --verify` are
checked. See docs/crash-safety.md.

Standard library only; Postgres is read with psql. Run it through
tests/crash/run.sh, which builds vouch first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

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


# --------------------------------------------------------------------------
# The vouch process
# --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vouch:
    """`vouch serve`, started and SIGKILLed again and again on one port."""

    def __init__(self, binary: str, workdir: str, env: dict, port: int) -> None:
        self.binary, self.workdir, self.env, self.port = binary, workdir, env, port
        self.proc: subprocess.Popen | None = None
        self.incarnation = 0
        self.admin_key: str | None = None
        self.keys_printed = 0
        self.up = threading.Event()
        self.started_at = 0.0
        self.startup_times: list[float] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.incarnation += 1
            n = self.incarnation
            errlog = open(os.path.join(self.workdir, f"vouch-{n:03d}.log"), "wb")
            self.up.clear()
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen([self.binary, "serve"], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errlog)
            errlog.close()
            proc = self.proc
        threading.Thread(target=self._read_stdout, args=(proc, n), daemon=True).start()
        threading.Thread(target=self._watch_up, args=(proc, self.started_at), daemon=True).start()

    def _read_stdout(self, proc: subprocess.Popen, n: int) -> None:
        with open(os.path.join(self.workdir, f"vouch-{n:03d}.out"), "w") as out:
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                stripped = line.strip()
                if stripped.startswith("vk_"):
                    self.keys_printed += 1
                    self.admin_key = self.admin_key or stripped
                    out.write("    vk_[the bootstrap admin key]\n")
                else:
                    out.write(line)

    def _watch_up(self, proc: subprocess.Popen, started: float) -> None:
        while proc.poll() is None:
            try:
                status, _, _ = http_call(self.port, "GET", "/healthz", timeout=2)
                if status == 200 and proc.poll() is None:
                    self.startup_times.append(time.monotonic() - started)
                    self.up.set()
                    return
            except ConnectionFailed:
                pass
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            if self.proc is not None:
                self.proc.wait()

    def wait_up(self, timeout: float) -> bool:
        return self.up.wait(timeout)


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


# --------------------------------------------------------------------------
# What a load thread knows of the world it made
# --------------------------------------------------------------------------

@dataclass(eq=False)
class User:
    email: str
    password: str
    id: str | None = None
    disabled: bool = False
    sessions: list = field(default_factory=list)

    def live_sessions(self) -> list:
        return [s for s in self.sessions if s.live]


@dataclass(eq=False)
class Session:
    user: User
    id: str | None = None
    access: str | None = None
    refresh: str | None = None
    live: bool = True


@dataclass(eq=False)
class Org:
    id: str
    slug: str
    owner: User | None
    members: dict = field(default_factory=dict)   # user id -> role


@dataclass(eq=False)
class Key:
    id: str
    org: Org
    name: str
    scopes: list
    plaintext: str | None
    rotated_from: str | None = None
    revoked: bool = False
    rotated: bool = False
    grace: int = 0


class Worker(threading.Thread):
    """One load thread: its own users, orgs and keys, one operation at a time."""

    def __init__(self, idx: int, tag: str, seed: int, runner: Runner, admin_key: str,
                 stop: threading.Event, stable: threading.Event) -> None:
        super().__init__(name=f"load-{idx}", daemon=True)
        self.idx, self.tag, self.runner, self.admin = idx, tag, runner, admin_key
        self.rng = random.Random(seed * 1000 + idx)
        self.stop, self.stable = stop, stable
        self.seq = 0
        self.users: list[User] = []
        self.orgs: list[Org] = []
        self.keys: list[Key] = []
        self.api_problems: list[str] = []
        self.error: str | None = None

    # ---- plumbing

    def next_id(self) -> str:
        self.seq += 1
        return f"{self.tag}-t{self.idx}-{self.seq:05d}"

    def op(self, kind: str, method: str, path: str, body, token, expect, **info) -> Op:
        oid = info.pop("oid", None) or self.next_id()
        raw = None if body is None else json.dumps(body).encode()
        STATS.add(f"op:{kind}")
        return self.runner.run(Op(oid, kind, method, path, raw, token, expect, info))

    def pick(self, items):
        return self.rng.choice(items) if items else None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
            self.stable.wait()
            self.final_checks()
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            import traceback
            self.error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            STATS.fail(f"load thread {self.idx} crashed: {self.error}")

    def step(self) -> None:
        table = [
            (3.0 if len(self.users) < MAX_USERS else 0.3, self.sign_up),
            (3.0, self.sign_in), (0.6, self.sign_in_fail), (3.0, self.refresh),
            (0.5, self.sign_out), (1.2 if len(self.orgs) < MAX_ORGS else 0.1, self.create_org),
            (2.0, self.add_member), (1.2, self.change_role), (0.8, self.remove_member),
            (2.2, self.create_key), (1.2, self.rotate_key), (1.0, self.revoke_key),
            (0.6, self.disable), (0.6, self.enable), (0.7, self.change_password),
        ]
        total = sum(w for w, _ in table)
        for _ in range(20):
            r = self.rng.uniform(0, total)
            for w, fn in table:
                r -= w
                if r <= 0:
                    break
            if fn() is not False:
                return
        self.sign_up()

    def known_users(self) -> list[User]:
        return [u for u in self.users if u.id]

    def user_token(self, user: User | None) -> str | None:
        if user is None:
            return None
        live = [s for s in user.live_sessions() if s.access]
        return self.pick(live).access if live else None

    def org_key(self, org: Org, exclude: Key | None = None) -> Key | None:
        keys = [k for k in self.keys if k.org is org and "vouch:org:admin" in k.scopes
                and k.plaintext and not k.revoked and not k.rotated and k is not exclude]
        return self.pick(keys)

    def manager_token(self, org: Org, exclude: Key | None = None) -> tuple[str, str]:
        """A credential that manages `org`: its owner, one of its keys, or admin."""
        choices = [("admin", self.admin)]
        owner = self.user_token(org.owner) if org.owner and not org.owner.disabled else None
        if owner:
            choices += [("owner", owner)] * 2
        key = self.org_key(org, exclude)
        if key:
            choices.append(("org_key", key.plaintext))
        return self.rng.choice(choices)

    # ---- users and sessions

    def sign_up(self):
        if len(self.users) >= MAX_USERS + 4:
            return False
        oid = self.next_id()
        email = f"{oid}@crash.example.com"
        password = f"pw-{oid}-{self.rng.getrandbits(48):012x}"
        PASSWORDS.add(password)
        op = self.op("sign_up", "POST", "/v1/users",
                     {"email": email, "password": password, "name": f"user {oid}"},
                     None, (201,), oid=oid, email=email)
        if op.applied:
            user = User(email, password)
            if op.status == 201:
                user.id = op.resp["id"]
                op.info["user_id"] = user.id
            self.users.append(user)

    def sign_in(self, user: User | None = None):
        if user is None:
            user = self.pick([u for u in self.users if not u.disabled
                              and len(u.live_sessions()) < MAX_LIVE_SESSIONS])
        if user is None:
            return False
        op = self.op("sign_in", "POST", "/v1/sessions",
                     {"email": user.email, "password": user.password}, None, (201,),
                     email=user.email, user_id=user.id)
        if op.applied:
            session = Session(user)
            if op.status == 201:
                body = op.resp
                user.id = body["user"]["id"]
                session.id, session.access = body["session_id"], body["access_token"]
                session.refresh = body["refresh_token"]
                op.info.update(user_id=user.id, session_id=session.id)
            user.sessions.append(session)
        return op

    def sign_in_fail(self, user: User | None = None):
        user = user or self.pick(self.users)
        if user is None:
            return False
        # A disabled user with the right password, or a wrong password: both
        # answer 401 and record user.login_failed.
        password = user.password if user.disabled else user.password + "-wrong"
        self.op("sign_in_fail", "POST", "/v1/sessions",
                {"email": user.email, "password": password}, None, (401,),
                email=user.email, user_id=user.id,
                reason="user_disabled" if user.disabled else "wrong_password")

    def refresh(self, session: Session | None = None):
        if session is None:
            session = self.pick([s for u in self.users for s in u.live_sessions() if s.refresh])
        if session is None:
            return False
        op = self.op("refresh", "POST", "/v1/sessions/refresh",
                     {"refresh_token": session.refresh}, None, (200,), session_id=session.id)
        if op.outcome == "lost":
            session.refresh = None
        elif op.applied:
            session.refresh, session.access = op.resp["refresh_token"], op.resp["access_token"]
        return op

    def sign_out(self):
        session = self.pick([s for u in self.users for s in u.live_sessions() if s.access])
        if session is None:
            return False
        op = self.op("sign_out", "DELETE", "/v1/sessions/current", None, session.access,
                     (204,), session_id=session.id, gone=(401,))
        if op.applied:
            session.live = False

    def disable(self):
        user = self.pick([u for u in self.known_users() if not u.disabled])
        if user is None:
            return False
        live = user.live_sessions()
        op = self.op("disable", "POST", f"/v1/users/{user.id}/disable",
                     {"reason": "crash test"}, self.admin, (200,), user_id=user.id,
                     live=[s.id for s in live if s.id])
        if op.applied:
            user.disabled = True
            for s in live:
                s.live = False

    def enable(self):
        user = self.pick([u for u in self.known_users() if u.disabled])
        if user is None:
            return False
        op = self.op("enable", "POST", f"/v1/users/{user.id}/enable", None, self.admin,
                     (200,), user_id=user.id)
        if op.applied:
            user.disabled = False

    def change_password(self):
        user = self.pick([u for u in self.known_users() if not u.disabled
                          and any(s.access for s in u.live_sessions())])
        if user is None:
            return False
        own = self.pick([s for s in user.live_sessions() if s.access])
        others = [s for s in user.live_sessions() if s is not own]
        new = f"pw2-{self.rng.getrandbits(64):016x}"
        PASSWORDS.add(new)
        op = self.op("change_password", "POST", f"/v1/users/{user.id}/password",
                     {"current_password": user.password, "new_password": new}, own.access,
                     (204,), user_id=user.id, own_session=own.id,
                     live=[s.id for s in others if s.id])
        if op.applied:
            user.password = new
            for s in others:
                s.live = False

    # ---- orgs and members

    def create_org(self):
        oid = self.next_id()
        slug = f"o-{oid}"
        mode = self.rng.choices(["user", "admin_owner", "admin"], [5, 3, 1])[0]
        owner, token = None, self.admin
        body = {"name": f"org {oid}", "slug": slug}
        if mode == "user":
            candidates = [u for u in self.known_users() if not u.disabled
                          and any(s.access for s in u.live_sessions())]
            owner = self.pick(candidates)
            if owner is None:
                mode = "admin_owner"
            else:
                token = self.user_token(owner)
        if mode == "admin_owner":
            owner = self.pick(self.known_users())
            if owner is None:
                mode = "admin"
            else:
                body["owner_id"] = owner.id
        op = self.op("create_org", "POST", "/v1/orgs", body, token, (201,), oid=oid,
                     slug=slug, owner_id=owner.id if owner else None, by=mode)
        if op.status == 201:
            org = Org(op.resp["id"], slug, owner)
            if owner:
                org.members[owner.id] = "owner"
            op.info["org_id"] = org.id
            self.orgs.append(org)
        return op

    def add_member(self):
        org = self.pick(self.orgs)
        if org is None:
            return False
        user = self.pick([u for u in self.known_users() if u.id not in org.members])
        if user is None:
            return False
        role = self.rng.choice(ROLES)
        by, token = self.manager_token(org)
        op = self.op("add_member", "POST", f"/v1/orgs/{org.id}/members",
                     {"user_id": user.id, "role": role}, token, (201,), org_id=org.id,
                     user_id=user.id, role=role, by=by)
        if op.applied:
            org.members[user.id] = role

    def change_role(self):
        org = self.pick([o for o in self.orgs if any(r != "owner" for r in o.members.values())])
        if org is None:
            return False
        user_id = self.pick([u for u, r in org.members.items() if r != "owner"])
        role = "admin" if org.members[user_id] == "member" else "member"
        by, token = self.manager_token(org)
        op = self.op("change_role", "PATCH", f"/v1/orgs/{org.id}/members/{user_id}",
                     {"role": role}, token, (200,), org_id=org.id, user_id=user_id, role=role,
                     by=by)
        if op.applied:
            org.members[user_id] = role

    def remove_member(self):
        org = self.pick([o for o in self.orgs if any(r != "owner" for r in o.members.values())])
        if org is None:
            return False
        user_id = self.pick([u for u, r in org.members.items() if r != "owner"])
        by, token = self.manager_token(org)
        op = self.op("remove_member", "DELETE", f"/v1/orgs/{org.id}/members/{user_id}", None,
                     token, (204,), org_id=org.id, user_id=user_id, by=by, gone=(404,))
        if op.applied:
            del org.members[user_id]

    # ---- API keys

    def create_key(self):
        org = self.pick(self.orgs)
        if org is None:
            return False
        oid = self.next_id()
        scopes = list(self.rng.choice(KEY_SCOPES))
        by, token = self.manager_token(org)
        op = self.op("create_key", "POST", f"/v1/orgs/{org.id}/keys",
                     {"name": oid, "scopes": scopes}, token, (201,), oid=oid, org_id=org.id,
                     name=oid, by=by)
        if op.status == 201:
            key = Key(op.resp["id"], org, oid, scopes, op.resp["key"])
            op.info["key_id"] = key.id
            self.keys.append(key)

    def rotate_key(self):
        key = self.pick([k for k in self.keys if not k.revoked and not k.rotated])
        if key is None:
            return False
        grace = self.rng.choice([0, 0, 300])
        by, token = self.manager_token(key.org, exclude=key)
        body = {"grace_seconds": grace} if grace or self.rng.random() < 0.5 else None
        op = self.op("rotate_key", "POST", f"/v1/orgs/{key.org.id}/keys/{key.id}/rotate", body,
                     token, (201,), org_id=key.org.id, key_id=key.id, name=key.name, by=by)
        if op.applied:
            key.rotated, key.grace = True, grace
        if op.status == 201:
            new = Key(op.resp["id"], key.org, key.name, key.scopes, op.resp["key"], key.id)
            op.info["new_key_id"] = new.id
            self.keys.append(new)

    def revoke_key(self):
        key = self.pick([k for k in self.keys if not k.revoked])
        if key is None:
            return False
        by, token = self.manager_token(key.org, exclude=key)
        op = self.op("revoke_key", "POST", f"/v1/orgs/{key.org.id}/keys/{key.id}/revoke",
                     {"reason": "crash test"}, token, (200,), org_id=key.org.id, key_id=key.id,
                     by=by)
        if op.applied:
            key.revoked = True

    # ---- after the last restart: what the API says now

    def api_get(self, method: str, path: str, body=None, token=None):
        raw = None if body is None else json.dumps(body).encode()
        for _ in range(50):
            try:
                STATS.add("check_requests")
                return http_call(self.runner.port, method, path, raw, token=token)
            except ConnectionFailed:
                time.sleep(0.1)
        raise RuntimeError(f"{method} {path}: no connection")

    def problem(self, msg: str) -> None:
        self.api_problems.append(msg)
        STATS.fail(f"API check: {msg}")

    def final_checks(self) -> None:
        # Every refresh token the thread holds is the current one.
        for user in self.users:
            for s in user.live_sessions():
                if s.refresh:
                    op = self.refresh(s)
                    if op.status != 200:
                        self.problem(f"session {s.id}: final refresh answered {op.status}")
        # Access tokens of live sessions work, those of ended ones do not.
        for user in self.users:
            for s in user.sessions:
                if not s.access:
                    continue
                status, _, js = self.api_get("GET", "/v1/me", token=s.access)
                want = 200 if s.live else 401
                if status != want:
                    self.problem(f"session {s.id} (live={s.live}): GET /v1/me {status}")
                elif status == 200 and js["user"]["id"] != user.id:
                    self.problem(f"session {s.id}: /v1/me is user {js['user']['id']}")
        # Every key the thread was given (first answers and replays alike)
        # verifies as the model says.
        for key in self.keys:
            if not key.plaintext:
                continue
            status, _, js = self.api_get("POST", "/v1/keys/verify", {"key": key.plaintext},
                                         token=self.admin)
            if key.revoked:
                want = "revoked"
            elif key.rotated and key.grace == 0:
                want = "expired"
            else:
                want = "valid"
            got = "valid" if status == 200 and js.get("valid") else (js or {}).get("code")
            if got != want or (got == "valid" and js.get("key_id") != key.id):
                self.problem(f"key {key.id}: verify says {status} {js}, expected {want}")
        # Passwords and disabled flags, for a few users.
        for user in self.rng.sample(self.users, min(3, len(self.users))):
            if user.disabled:
                self.sign_in_fail(user)
            else:
                op = self.sign_in(user)
                if op.status != 201:
                    self.problem(f"user {user.email}: sign-in with the current password "
                                 f"answered {op.status}")


# --------------------------------------------------------------------------
# Checks against the log and the read models
# --------------------------------------------------------------------------

class Findings:
    CATEGORIES = ("lost", "duplicates", "half_applied", "phantom", "mismatched",
                  "read_model", "bus", "chain")

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {c: [] for c in self.CATEGORIES}

    def add(self, category: str, msg: str) -> None:
        self.items[category].append(msg)
        if sum(len(v) for v in self.items.values()) <= 60:
            log(f"CHECK {category}: {msg}")

    def count(self, category: str) -> int:
        return len(self.items[category])


def load_events(db: str) -> list[dict]:
    events = psql_json(db, """
        SELECT position, transaction_id::text AS tx, stream_type, stream_id::text AS stream,
               version, event_type AS type, data, metadata->>'request_id' AS rid,
               metadata->'actor' AS actor, event_id::text AS event_id
        FROM auth_events ORDER BY position""")
    for e in events:
        e["tx"] = int(e["tx"])
    return events


def check_log_invariants(events: list[dict], found: Findings) -> None:
    """What must hold of every command in the log, whoever sent it."""
    streams = defaultdict(list)
    by_tx = defaultdict(list)
    for e in events:
        streams[e["stream"]].append(e["version"])
        by_tx[e["tx"]].append(e)
    for stream, versions in streams.items():
        if sorted(versions) != list(range(1, len(versions) + 1)):
            found.add("half_applied", f"stream {stream}: versions {sorted(versions)[:12]}")
    # One request, one transaction: a command that ran twice would leave two.
    txs_of_request = defaultdict(set)
    for e in events:
        if e["rid"]:
            txs_of_request[e["rid"]].add(e["tx"])
    for rid, txs in txs_of_request.items():
        if len(txs) > 1:
            found.add("duplicates", f"request {rid}: events in {len(txs)} transactions")

    keys = {}
    started, revoked = {}, {}
    for e in events:
        if e["type"] == "api_key.created":
            keys[e["stream"]] = e
        elif e["type"] == "session.started":
            started[e["stream"]] = (e["data"]["user_id"], e["tx"])
        elif e["type"] == "session.revoked":
            revoked.setdefault(e["stream"], (e["tx"], e["data"]["reason"]))
    for e in events:
        tx_events = by_tx[e["tx"]]
        if e["type"] == "api_key.created" and e["data"].get("rotated_from"):
            old = e["data"]["rotated_from"]
            old_created = keys.get(old)
            if old_created is None:
                found.add("half_applied", f"key {e['stream']} rotated from unknown key {old}")
            elif old_created["data"].get("expires_at") is None and not any(
                    x["type"] == "api_key.expiry_set" and x["stream"] == old for x in tx_events):
                found.add("half_applied",
                          f"rotation to {e['stream']}: no api_key.expiry_set of {old} in tx {e['tx']}")
        elif e["type"] == "org.created" and e["data"].get("created_by"):
            owner = e["data"]["created_by"]
            if not any(x["type"] == "org.member_added" and x["stream"] == e["stream"]
                       and x["data"]["user_id"] == owner and x["data"]["role"] == "owner"
                       for x in tx_events):
                found.add("half_applied", f"org {e['stream']}: created without its owner")
        elif e["type"] in ("user.disabled", "user.password_changed"):
            user, tx = e["stream"], e["tx"]
            reason = "user_disabled" if e["type"] == "user.disabled" else "password_changed"
            keep = (e["actor"] or {}).get("session_id") if reason == "password_changed" else None
            for sid, (uid, stx) in started.items():
                if uid != user or stx >= tx or sid == keep:
                    continue
                rtx = revoked.get(sid)
                if rtx is not None and rtx[0] < tx:
                    continue  # ended earlier
                if rtx is None or rtx[0] != tx or rtx[1] != reason:
                    found.add("half_applied",
                              f"{e['type']} of {user} (tx {tx}): session {sid} not revoked with it")


def expected_events(op: Op) -> dict:
    """The events one run of `op` appends: type -> exact count (None: any)."""
    k = op.kind
    if k == "sign_up":
        return {"user.registered": 1}
    if k == "sign_in":
        return {"session.started": 1}
    if k == "sign_in_fail":
        return {"user.login_failed": 1}
    if k == "refresh":
        return {"session.refreshed": 1}
    if k == "sign_out":
        return {"session.revoked": 1}
    if k == "create_org":
        return {"org.created": 1, "org.member_added": 1 if op.info["owner_id"] else 0}
    if k == "add_member":
        return {"org.member_added": 1}
    if k == "change_role":
        return {"org.member_role_changed": 1}
    if k == "remove_member":
        return {"org.member_removed": 1}
    if k == "create_key":
        return {"api_key.created": 1}
    if k == "rotate_key":
        return {"api_key.created": 1, "api_key.expiry_set": 1}
    if k == "revoke_key":
        return {"api_key.revoked": 1}
    if k == "disable":
        return {"user.disabled": 1, "session.revoked": None}
    if k == "enable":
        return {"user.enabled": 1}
    if k == "change_password":
        return {"user.password_changed": 1, "session.revoked": None}
    raise ValueError(k)


def check_op(op: Op, evs: list[dict], found: Findings) -> None:
    if not op.applied:
        if evs:
            found.add("phantom", f"{op.id} {op.kind} answered {op.status} ({op.outcome}) "
                                 f"but appended {[e['type'] for e in evs]}")
        return
    want = expected_events(op)
    got = Counter(e["type"] for e in evs)
    for etype, n in want.items():
        if n is None:
            continue
        if got[etype] < n:
            main = next(iter(want))
            cat = "lost" if etype == main else "half_applied"
            found.add(cat, f"{op.id} {op.kind} ({op.outcome} {op.status}): "
                           f"{got[etype]} {etype}, expected {n}")
        elif got[etype] > n:
            found.add("duplicates", f"{op.id} {op.kind}: {got[etype]} {etype}, expected {n}")
    extra = set(got) - set(want)
    if extra:
        found.add("mismatched", f"{op.id} {op.kind}: unexpected events {sorted(extra)}")
    if len({e["tx"] for e in evs}) > 1:
        return  # counted by the log invariants
    info = op.info

    def first(etype):
        return next((e for e in evs if e["type"] == etype), None)

    def expect(cond: bool, what: str) -> None:
        if not cond:
            found.add("mismatched", f"{op.id} {op.kind}: {what}")

    k = op.kind
    if k == "sign_up" and (e := first("user.registered")):
        expect(e["data"]["email"] == info["email"], "email differs")
        if info.get("user_id"):
            expect(e["stream"] == info["user_id"], "user id differs from the answer")
    elif k == "sign_in" and (e := first("session.started")):
        if info.get("session_id"):
            expect(e["stream"] == info["session_id"], "session id differs from the answer")
        if info.get("user_id"):
            expect(e["data"]["user_id"] == info["user_id"], "session of another user")
    elif k == "sign_in_fail" and (e := first("user.login_failed")):
        expect(e["data"]["reason"] == info["reason"], f"reason {e['data']['reason']}")
        if info.get("user_id"):
            expect(e["stream"] == info["user_id"], "failure recorded on another user")
    elif k in ("refresh", "sign_out") and evs:
        if info.get("session_id"):
            expect(all(e["stream"] == info["session_id"] for e in evs), "another session")
    elif k == "create_org" and (e := first("org.created")):
        expect(e["data"]["slug"] == info["slug"], "slug differs")
        if info.get("org_id"):
            expect(e["stream"] == info["org_id"], "org id differs from the answer")
        if info["owner_id"] and (m := first("org.member_added")):
            expect(m["stream"] == e["stream"] and m["data"]["user_id"] == info["owner_id"]
                   and m["data"]["role"] == "owner", "owner not added to the org")
    elif k in ("add_member", "change_role", "remove_member") and evs:
        e = evs[0]
        expect(e["stream"] == info["org_id"] and e["data"]["user_id"] == info["user_id"],
               "another org or user")
        if k != "remove_member":
            expect(e["data"]["role"] == info["role"], "another role")
    elif k == "create_key" and (e := first("api_key.created")):
        expect(e["data"]["name"] == info["name"], "name differs")
        if info.get("key_id"):
            expect(e["stream"] == info["key_id"], "key id differs from the answer")
    elif k == "rotate_key" and (e := first("api_key.created")):
        expect(e["data"].get("rotated_from") == info["key_id"], "rotated from another key")
        if info.get("new_key_id"):
            expect(e["stream"] == info["new_key_id"], "new key id differs from the answer")
        if (x := first("api_key.expiry_set")):
            expect(x["stream"] == info["key_id"], "expiry set on another key")
    elif k == "revoke_key" and (e := first("api_key.revoked")):
        expect(e["stream"] == info["key_id"], "another key revoked")
    elif k in ("disable", "enable", "change_password"):
        main = {"disable": "user.disabled", "enable": "user.enabled",
                "change_password": "user.password_changed"}[k]
        if (e := first(main)):
            expect(e["stream"] == info["user_id"], "another user")
        ended = {e["stream"] for e in evs if e["type"] == "session.revoked"}
        missing = set(info.get("live", [])) - ended
        if missing:
            found.add("half_applied", f"{op.id} {k}: sessions {sorted(missing)} not revoked with it")
        if k == "change_password" and info["own_session"] in ended:
            found.add("mismatched", f"{op.id} change_password revoked the caller's own session")


def check_read_models(db: str, workers: list[Worker], ops: list[Op], found: Findings) -> None:
    users = {r["id"]: r for r in psql_json(db, "SELECT id::text, email, disabled FROM users")}
    by_email = {r["email"]: r for r in users.values()}
    orgs = {r["id"]: r for r in psql_json(db, "SELECT id::text, slug FROM orgs")}
    members = defaultdict(dict)
    for r in psql_json(db, "SELECT org_id::text, user_id::text, role FROM memberships"):
        members[r["org_id"]][r["user_id"]] = r["role"]
    keys = {r["id"]: r for r in psql_json(
        db, "SELECT id::text, org_id::text, name, rotated_from::text, revoked_at IS NOT NULL "
            "AS revoked, expires_at IS NOT NULL AS expiring FROM api_keys")}
    sessions = {r["id"]: r for r in psql_json(
        db, "SELECT id::text, user_id::text, revoked_at IS NOT NULL AS revoked FROM sessions")}

    for op in ops:
        if not op.applied:
            continue
        i = op.info
        if op.kind == "sign_up" and i["email"] not in by_email:
            found.add("read_model", f"{op.id}: no users row for {i['email']}")
        elif op.kind == "sign_in" and i.get("session_id") and i["session_id"] not in sessions:
            found.add("read_model", f"{op.id}: no sessions row {i['session_id']}")
        elif op.kind == "create_org" and i.get("org_id") and i["org_id"] not in orgs:
            found.add("read_model", f"{op.id}: no orgs row {i['org_id']}")
        elif op.kind == "create_key" and i.get("key_id") and i["key_id"] not in keys:
            found.add("read_model", f"{op.id}: no api_keys row {i['key_id']}")
        elif op.kind == "rotate_key" and i.get("new_key_id") and i["new_key_id"] not in keys:
            found.add("read_model", f"{op.id}: no api_keys row {i['new_key_id']}")

    for w in workers:
        for u in w.users:
            row = by_email.get(u.email)
            if row is None:
                found.add("read_model", f"user {u.email}: no row")
                continue
            if u.id and row["id"] != u.id:
                found.add("read_model", f"user {u.email}: row {row['id']}, answer said {u.id}")
            if row["disabled"] != u.disabled:
                found.add("read_model", f"user {u.email}: disabled={row['disabled']}, "
                                        f"expected {u.disabled}")
            for s in u.sessions:
                if not s.id:
                    continue
                srow = sessions.get(s.id)
                if srow is None or srow["user_id"] != row["id"] or srow["revoked"] == s.live:
                    found.add("read_model", f"session {s.id}: row {srow}, expected live={s.live}")
        for o in w.orgs:
            if orgs.get(o.id, {}).get("slug") != o.slug:
                found.add("read_model", f"org {o.id}: row {orgs.get(o.id)}")
            if members.get(o.id, {}) != o.members:
                found.add("read_model", f"org {o.id}: members {members.get(o.id)}, "
                                        f"expected {o.members}")
        for k in w.keys:
            row = keys.get(k.id)
            if row is None:
                found.add("read_model", f"key {k.id}: no row")
                continue
            if (row["org_id"], row["name"], row["rotated_from"]) != (k.org.id, k.name,
                                                                     k.rotated_from):
                found.add("read_model", f"key {k.id}: row {row}")
            if row["revoked"] != k.revoked or (k.rotated and not row["expiring"]):
                found.add("read_model", f"key {k.id}: row {row}, expected revoked={k.revoked} "
                                        f"rotated={k.rotated}")
    # One key chain per key name: a creation that ran twice would start a second.
    roots = Counter(r["name"] for r in keys.values() if r["rotated_from"] is None)
    ours = {op.info["name"] for op in ops if op.kind == "create_key" and op.applied}
    for name in ours:
        if roots[name] != 1:
            found.add("duplicates", f"key name {name}: {roots[name]} keys not made by rotation")


def check_idempotency_records(db: str, ops: list[Op], found: Findings) -> int:
    """Claims left without an answer are exactly the requests answered 409 "applied"."""
    pending = {r["key"] for r in psql_json(
        db, "SELECT key FROM idempotency_records WHERE status IS NULL")}
    lost = {op.id for op in ops if op.outcome == "lost"}
    for oid in sorted(pending - lost):
        found.add("mismatched", f"{oid}: claim without an answer, but the client was answered")
    for oid in sorted(lost - pending):
        found.add("mismatched", f"{oid}: answered 409 applied, but its answer is stored")
    return len(pending)


def wait_for(pred, timeout: float, step: float = 0.25) -> tuple[bool, float]:
    started = time.monotonic()
    while True:
        if pred():
            return True, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started
        time.sleep(step)


def relay_lag(db: str) -> tuple[int, int]:
    """Events after the relay's checkpoint: all of them, and those it can read
    now (older than every transaction still open on the server)."""
    row = psql(db, """
        SELECT count(*), count(*) FILTER (
                 WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))
        FROM auth_events e, log_checkpoints c WHERE c.name = 'relay'
          AND (e.transaction_id, e.position) > (c.transaction_id, c.position)""")[0]
    behind, readable = row.split("|")
    return int(behind), int(readable)


def oldest_transaction() -> str | None:
    """The oldest transaction on the server that holds the commit-safe bound back."""
    rows = psql("postgres", """
        SELECT datname || ' (pid ' || pid || ', open ' || round(extract(epoch FROM
               now() - xact_start)) || ' s, ' || state || ')'
        FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
        ORDER BY xact_start LIMIT 1""")
    return rows[0] if rows else None


def wait_for_relay(db: str, found: "Findings") -> tuple[bool, float, set]:
    """Waits until the relay checkpoint reaches the end of the log.

    The relay reads in commit-safe order, so any transaction open on the
    Postgres server (another project's tests on a shared one) holds it back
    until it ends. That is not a fault of the relay; events it can read and
    has not published for 30 s are.
    """
    started = time.monotonic()
    stuck_since = None
    holders = set()
    while True:
        behind, readable = relay_lag(db)
        waited = time.monotonic() - started
        if behind == 0:
            return True, waited, holders
        if readable:
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 30:
                found.add("bus", f"relay: {readable} readable events unpublished for 30 s")
                return False, waited, holders
        else:
            stuck_since = None
            holder = oldest_transaction()
            if holder:
                holders.add(holder.split(" (")[0])
        if waited > 180:
            log(f"relay: {behind} events behind after 180 s, none of them readable yet: "
                f"held back by an open transaction ({oldest_transaction()})")
            return False, waited, holders
        time.sleep(0.25)


def read_audit_ids(path: str) -> set:
    ids = set()
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    ids.add(json.loads(line)["id"])
                except (ValueError, KeyError):
                    pass
    except FileNotFoundError:
        pass
    return ids


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def kill_schedule(rng: random.Random, duration: float, kills: int) -> list[float]:
    """`kills` moments in (1.5 s, duration - 1.5 s), at least 0.25 s apart."""
    lo, hi = min(1.5, duration / 4), max(duration - 1.5, duration * 3 / 4)
    times = sorted(rng.uniform(lo, hi) for _ in range(kills))
    for i in range(1, len(times)):
        times[i] = max(times[i], times[i - 1] + 0.25)
    return times


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="target/debug/vouch", help="the vouch binary")
    p.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    p.add_argument("--kills", type=int, default=15, help="SIGKILLs during the load (default 15)")
    p.add_argument("--threads", type=int, default=8, help="load threads (default 8)")
    p.add_argument("--seed", type=int, default=None, help="seed of the load and the kill moments")
    p.add_argument("--early-kills", type=float, default=0.2,
                   help="share of kills sent right after a restart, during start-up (0.2)")
    p.add_argument("--sabotage", type=float, default=0.0,
                   help="checks the checks: send this share of some requests twice under "
                        "two Idempotency-Keys; the run must then fail with duplicates")
    p.add_argument("--keep", action="store_true",
                   help="keep the database, the queue and the logs (logs are kept on failure)")
    p.add_argument("--summary-json", help="also write the figures to this file")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    rng = random.Random(seed)
    tag = os.urandom(4).hex()
    db = f"vouch_crash_{tag}"
    exchange = f"vouch.crash.{tag}"
    queue = f"{exchange}.audit"
    workdir = tempfile.mkdtemp(prefix=f"vouch-crash-{tag}-")
    port = free_port()
    binary = os.path.abspath(args.bin)
    audit_file = os.path.join(workdir, "audit.jsonl")
    env = dict(os.environ)
    env.update({
        "VOUCH_DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}",
        "VOUCH_BIND": f"127.0.0.1:{port}",
        "VOUCH_EXCHANGE": exchange,
        "VOUCH_AUDIT_QUEUE": queue,
        "VOUCH_AUDIT_KEY_FILE": os.path.join(workdir, "audit.key"),
        "VOUCH_RELAY": "true",
        "VOUCH_CHAINER": "true",
        "VOUCH_SIGNIN_EMAIL_FAILURES": "1000000",
        "VOUCH_SIGNIN_IP_ATTEMPTS": "1000000",
        "VOUCH_SIGNUP_IP_ATTEMPTS": "1000000",
        "VOUCH_JWKS_PUBLISH_DELAY_SECONDS": "0",
        "VOUCH_LOG": env.get("VOUCH_LOG", "info"),
    })
    log(f"crash test {tag}: seed {seed}, {args.threads} threads, {args.duration:.0f} s, "
        f"{args.kills} kills; database {db}, port {port}, logs in {workdir}")

    vouch = Vouch(binary, workdir, env, port)
    consumer = None
    failed = True
    summary: dict = {}
    try:
        # The audit subscriber binds a queue to the exchange first: the relay
        # publishes with `mandatory`, so an unbound exchange would stall it.
        consumer_log = open(os.path.join(workdir, "audit-consume.log"), "wb")
        consumer = subprocess.Popen([binary, "audit-consume", "--out", audit_file], env=env,
                                    stdin=subprocess.DEVNULL, stdout=consumer_log,
                                    stderr=subprocess.STDOUT)
        ok, _ = wait_for(lambda: b"consuming" in open(consumer_log.name, "rb").read()
                         or consumer.poll() is not None, 30)
        if not ok or consumer.poll() is not None:
            raise RuntimeError("vouch audit-consume did not start")

        vouch.start()
        if not vouch.wait_up(120):
            raise RuntimeError("vouch did not start")
        ok, _ = wait_for(lambda: vouch.admin_key is not None, 5, 0.05)
        if not ok:
            raise RuntimeError("no bootstrap admin key on vouch's stdout")
        log(f"vouch up in {vouch.startup_times[0]:.2f} s; bootstrap admin key captured")

        runner = Runner(port, args.sabotage, seed)
        stop, stable = threading.Event(), threading.Event()
        workers = [Worker(i, tag, seed, runner, vouch.admin_key, stop, stable)
                   for i in range(args.threads)]
        t0 = time.monotonic()
        for w in workers:
            w.start()

        kills_during_startup = 0
        died_alone = 0
        schedule = kill_schedule(rng, args.duration, args.kills)
        early = False
        for n in range(1, args.kills + 1):
            # Now and then the next kill comes while vouch is still starting.
            at = (time.monotonic() + rng.uniform(0.0, 0.06) if early
                  else t0 + schedule[n - 1])
            time.sleep(max(0.0, at - time.monotonic()))
            if not vouch.alive():
                died_alone += 1
                STATS.fail(f"vouch exited by itself (rc {vouch.proc.returncode}) "
                           f"before kill {n}; see {workdir}")
            was_up = vouch.up.is_set()
            served = time.monotonic() - vouch.started_at
            vouch.kill()
            STATS.add("kills")
            kills_during_startup += not was_up
            pause = rng.choice([0.0, 0.0, 0.0, 0.1, 0.3, 1.0])
            log(f"[{time.monotonic() - t0:6.1f} s] kill {n}/{args.kills}: "
                f"{'serving' if was_up else 'STARTING'} for {served:.2f} s; "
                f"{STATS.c['requests']} requests so far; restart in {pause:.1f} s")
            time.sleep(pause)
            vouch.start()
            early = rng.random() < args.early_kills
        time.sleep(max(0.0, t0 + args.duration - time.monotonic()))
        stop.set()
        log(f"[{time.monotonic() - t0:6.1f} s] load stops; waiting for the threads")
        if not vouch.wait_up(120):
            raise RuntimeError("vouch did not come back after the last restart")
        stable.set()
        for w in workers:
            w.join(timeout=OP_DEADLINE + 60)
            if w.is_alive():
                STATS.fail(f"load thread {w.idx} did not finish")
        load_seconds = time.monotonic() - t0
        if not vouch.alive():
            died_alone += 1
            STATS.fail("vouch exited by itself after the last restart")

        # ---- checks
        log("checking the log, the read models, the relay, the chain and replay")
        found = Findings()
        ops = runner.ops
        count_events = lambda: int(psql(db, "SELECT count(*) FROM auth_events")[0])  # noqa: E731
        relay_ok, relay_wait, relay_holders = wait_for_relay(db, found)
        chain_ok, chain_wait = wait_for(
            lambda: int(psql(db, "SELECT count(*) FROM audit_chain")[0]) == count_events(), 120)
        if not chain_ok:
            found.add("chain", "the audit chain did not reach the end of the log in 120 s")

        events = load_events(db)
        event_ids = {e["event_id"] for e in events}
        audit_ok, audit_wait = wait_for(lambda: event_ids <= read_audit_ids(audit_file), 120)
        delivered = read_audit_ids(audit_file)
        if not audit_ok:
            found.add("bus", f"{len(event_ids - delivered)} events never reached the audit "
                             f"subscriber")
        if delivered - event_ids:
            found.add("bus", f"{len(delivered - event_ids)} delivered events not in the log")

        gaps = psql(db, "SELECT stream_id FROM auth_events GROUP BY stream_id "
                        "HAVING max(version) <> count(*)")
        for g in gaps:
            found.add("half_applied", f"stream {g}: version gap (SQL)")
        chain_rows = psql(db, "SELECT count(*), count(DISTINCT position), COALESCE(max(seq), 0) "
                              "FROM audit_chain")[0].split("|")
        if not (chain_rows[0] == chain_rows[1] == chain_rows[2] == str(len(events))):
            found.add("chain", f"audit_chain rows/positions/max seq {chain_rows}, "
                               f"{len(events)} events")
        check_log_invariants(events, found)
        by_rid = defaultdict(list)
        for e in events:
            by_rid[e["rid"]].append(e)
        for op in ops:
            check_op(op, by_rid.get(op.id, []), found)
        check_read_models(db, workers, ops, found)
        unanswered_claims = check_idempotency_records(db, ops, found)
        bootstrap_orgs = int(psql(db, "SELECT count(*) FROM orgs WHERE slug = 'system'")[0])
        if bootstrap_orgs != 1 or vouch.keys_printed != 1:
            found.add("duplicates", f"bootstrap: {bootstrap_orgs} system orgs, "
                                    f"{vouch.keys_printed} admin keys printed")

        replay = subprocess.run([binary, "replay", "--verify"], env=env, capture_output=True,
                                text=True)
        replay_out = (replay.stdout + replay.stderr).strip()
        drift_rows = sum(1 for line in replay.stdout.splitlines() if line.startswith("drift in"))
        replay_ok = replay.returncode == 0 and "no drift" in replay.stdout
        if not replay_ok:
            log(f"replay --verify failed (exit {replay.returncode}):\n{replay_out[-3000:]}")

        export_file = os.path.join(workdir, "export.ndjson")
        export = subprocess.run([binary, "export", "--out", export_file], env=env,
                                capture_output=True, text=True)
        public = subprocess.run([binary, "audit-public-key"], env=env, capture_output=True,
                                text=True).stdout.split()
        verify = subprocess.run([binary, "verify-export", export_file, "--public-key",
                                 public[0] if public else ""], env=env, capture_output=True,
                                text=True)
        export_ok = (export.returncode == 0 and verify.returncode == 0
                     and f"ok: {len(events)} events" in verify.stdout)
        if not export_ok:
            found.add("chain", f"export/verify-export: {export.stderr.strip()[-500:]} "
                               f"{verify.stdout.strip()} {verify.stderr.strip()[-500:]}")

        error_lines, warnings = [], Counter()
        for name in sorted(os.listdir(workdir)):
            if name.startswith("vouch-") and name.endswith(".log"):
                with open(os.path.join(workdir, name), errors="replace") as f:
                    for line in f:
                        if '"level":"ERROR"' in line or "panicked" in line:
                            error_lines.append(f"{name}: {line.strip()}")
                        elif '"level":"WARN"' in line:
                            try:
                                warnings[json.loads(line).get("message", "?")] += 1
                            except ValueError:
                                warnings[line.strip()[:120]] += 1

        # Secrets in vouch's own log: keys, tokens, hashes and every password used.
        scanned = os.path.join(workdir, "scanned.log")
        with open(scanned, "wb") as out:
            for name in sorted(os.listdir(workdir)):
                if name.startswith("vouch-") and name.endswith(".log"):
                    with open(os.path.join(workdir, name), "rb") as f:
                        shutil.copyfileobj(f, out)
        passwords_file = os.path.join(workdir, "passwords.txt")
        with open(passwords_file, "w") as f:
            f.write("".join(f"{p}\n" for p in sorted(PASSWORDS)))
        scanner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scan_logs.sh")
        scan = subprocess.run([scanner, scanned, passwords_file], capture_output=True, text=True)
        scan_out = (scan.stdout + scan.stderr).strip()
        log(f"log scan: {scan_out.splitlines()[-1] if scan_out else '(no output)'}")
        os.remove(passwords_file)

        # ---- summary
        st = STATS.statuses
        by_class = Counter(f"{s // 100}xx" for s in st.elements())
        s500 = st[500]
        s5xx_other = sum(n for s, n in st.items() if s >= 500 and s not in (500, 503))
        outcomes = Counter(op.outcome for op in ops)
        summary = {
            "seed": seed, "threads": args.threads, "duration_s": args.duration,
            "load_seconds": round(load_seconds, 1),
            "operations": len(ops), "requests": STATS.c["requests"],
            "status_classes": dict(sorted(by_class.items())),
            "statuses": {str(k): v for k, v in sorted(st.items())},
            "retries": STATS.c["retries"], "connection_errors": STATS.c["connection_errors"],
            "503": st[503], "500": s500, "other_5xx": s5xx_other,
            "in_flight_409_retries": STATS.c["in_flight_409"],
            "in_flight_wait_s": STATS.c["in_flight_wait_ms"] / 1000,
            "replayed_answers": STATS.c["replayed"],
            "answer_lost_409": STATS.c["answer_lost_409"],
            "delete_applied_before_retry": STATS.c["delete_applied_before_retry"],
            "unanswered_claims": unanswered_claims,
            "unexpected_answers": STATS.c["unexpected_answers"],
            "gave_up": outcomes["gave_up"],
            "kills": STATS.c["kills"], "kills_during_startup": kills_during_startup,
            "sabotaged": STATS.c["sabotaged"],
            "restarts": vouch.incarnation - 1, "exited_by_itself": died_alone,
            "startup_seconds_max": round(max(vouch.startup_times), 2),
            "events": len(events),
            "commands_lost": found.count("lost"), "duplicates": found.count("duplicates"),
            "half_applied": found.count("half_applied"), "phantom": found.count("phantom"),
            "mismatched": found.count("mismatched"), "read_model": found.count("read_model"),
            "api_checks_failed": sum(len(w.api_problems) for w in workers),
            "api_check_requests": STATS.c["check_requests"],
            "drift_rows": drift_rows, "replay_verify_ok": replay_ok,
            "relay_caught_up": relay_ok, "relay_catch_up_s": round(relay_wait, 1),
            "relay_held_back_by": sorted(relay_holders),
            "audit_delivered": len(delivered & event_ids), "audit_missing": len(event_ids - delivered),
            "chain_caught_up": chain_ok, "export_verified": export_ok,
            "error_log_lines": len(error_lines),
            "log_scan_clean": scan.returncode == 0,
            "warnings": dict(warnings),
            "ops_by_kind": dict(sorted(Counter(op.kind for op in ops).items())),
        }
        problems = list(STATS.failures)
        for c in Findings.CATEGORIES:
            problems += [f"{c}: {m}" for m in found.items[c]]
        if not replay_ok:
            problems.append(f"replay --verify: exit {replay.returncode}, {drift_rows} drift rows")
        if STATS.c["kills"] < args.kills:
            problems.append(f"only {STATS.c['kills']} kills")
        if scan.returncode != 0:
            problems.append(f"log scan (exit {scan.returncode}): {scan_out[-2000:]}")
        failed = bool(problems) or s500 > 0 or s5xx_other > 0
        summary["failures"] = len(problems)

        log("")
        log("=" * 72)
        log(f"crash test {tag} (seed {seed}): {'FAILED' if failed else 'passed'}")
        log("=" * 72)
        rows = [
            ("operations", f"{len(ops)} ({', '.join(f'{k} {v}' for k, v in summary['ops_by_kind'].items())})"),
            ("requests sent", f"{summary['requests']} (+{summary['api_check_requests']} read-only checks)"),
            ("answers", ", ".join(f"{k} {v}" for k, v in summary["status_classes"].items())),
            ("by status", ", ".join(f"{k}: {v}" for k, v in summary["statuses"].items())),
            ("retries", f"{summary['retries']} (connection errors {summary['connection_errors']}, "
                        f"503 {st[503]}, 409 in flight {summary['in_flight_409_retries']}, "
                        f"{summary['in_flight_wait_s']:.0f} thread-seconds waiting on them)"),
            ("replayed answers", summary["replayed_answers"]),
            ("kills survived", f"{summary['kills']} ({kills_during_startup} during start-up), "
                               f"{summary['restarts']} restarts, slowest start "
                               f"{summary['startup_seconds_max']} s"),
            ("applied, answer lost", f"{summary['answer_lost_409']} (409), "
                                     f"{summary['delete_applied_before_retry']} DELETE; "
                                     f"{unanswered_claims} claims without an answer"),
            ("500 / other 5xx", f"{s500} / {s5xx_other}"),
            ("unexpected answers", summary["unexpected_answers"]),
            ("events in the log", len(events)),
            ("commands lost", summary["commands_lost"]),
            ("duplicates", summary["duplicates"]),
            ("half-applied", summary["half_applied"]),
            ("phantom (applied, refused)", summary["phantom"]),
            ("mismatched", summary["mismatched"]),
            ("read-model mismatches", summary["read_model"]),
            ("API check failures", summary["api_checks_failed"]),
            ("drift (replay --verify)", f"{drift_rows} rows, exit {replay.returncode}"),
            ("relay", (f"caught up in {relay_wait:.1f} s" if relay_ok else "BEHIND")
             + (f" (held back by open transactions of {', '.join(sorted(relay_holders))})"
                if relay_holders else "")),
            ("audit subscriber", f"{summary['audit_delivered']}/{len(events)} events"),
            ("audit chain / export", f"{'complete' if chain_ok else 'INCOMPLETE'} / "
                                     f"{'verified' if export_ok else 'FAILED'}"),
            ("ERROR log lines", len(error_lines)),
            ("WARN log lines", ", ".join(f"{m!r} x{n}" for m, n in warnings.most_common())
             or 0),
        ]
        for name, value in rows:
            log(f"  {name:<28} {value}")
        for line in error_lines[:10]:
            log(f"  log: {line[:300]}")
        if problems:
            log(f"  {len(problems)} failures; the first ones:")
            for p in problems[:25]:
                log(f"    - {p[:400]}")
        if args.summary_json:
            with open(args.summary_json, "w") as f:
                json.dump(summary, f, indent=2)
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        log(f"crash test aborted: {e}")
    finally:
        vouch.kill()
        if consumer is not None and consumer.poll() is None:
            consumer.send_signal(signal.SIGINT)
            try:
                consumer.wait(5)
            except subprocess.TimeoutExpired:
                consumer.kill()
                consumer.wait()
        if args.keep:
            log(f"kept for investigation: database {db}, queue {queue}, files in {workdir}")
        else:
            if failed:
                # The evidence outlives the database.
                subprocess.run(["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER,
                                "-Fc", "-f", os.path.join(workdir, "database.dump"), db],
                               capture_output=True)
            psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', check=False)
            if shutil.which("rabbitmqctl"):
                subprocess.run(["rabbitmqctl", "-q", "delete_queue", queue],
                               capture_output=True)
                subprocess.run(["rabbitmqctl", "-q", "eval",
                                f'rabbit_exchange:delete(rabbit_misc:r(<<"/">>, exchange, '
                                f'<<"{exchange}">>), false, <<"crash-test">>).'],
                               capture_output=True)
            if failed:
                log(f"logs and a pg_dump of the database kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def interrupted(*_) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    sys.exit(main())
