"""Checks against the log, the read models, the relay, the chain and the audit file."""

from __future__ import annotations
import json
import os
import time
from collections import Counter, defaultdict

from common import log, psql, psql_json
from ops import Op
from load import Worker

# --------------------------------------------------------------------------
# Checks against the log and the read models
# --------------------------------------------------------------------------

class Findings:
    CATEGORIES = ("lost", "duplicates", "half_applied", "phantom", "mismatched",
                  "read_model", "bus", "chain", "mail")

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
               metadata->'actor' AS actor, event_id::text AS event_id,
               -- Emails are sealed in the log: a registration's is read from its user row.
               (SELECT u.email FROM users u WHERE u.id = auth_events.stream_id
                  AND auth_events.event_type = 'user.registered') AS user_email
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
    """The events one run of `op` appends: type -> exact count, (least, most),
    or None (any)."""
    k = op.kind
    if k == "sign_up":
        return {"user.registered": 1}
    if k == "sign_in":
        return {"session.started": 1}
    if k == "sign_in_fail":
        # Recorded right after the 401, not before it (answer timing, see
        # docs/security-tests.md): a kill in those milliseconds loses the event,
        # while the throttle has counted the attempt already. Never two.
        return {"user.login_failed": (0, 1)}
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
    if k == "invite":
        return {"org.invitation_created": 1}
    if k == "request_reset":
        # Recorded right after the 202, not before it (the answer takes the
        # same time for every address, docs/account-lifecycle.md): a kill in
        # those milliseconds loses the request. Never two.
        return {"user.password_reset_requested": (0, 1)}
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
        least, most = n if isinstance(n, tuple) else (n, n)
        if got[etype] < least:
            main = next(iter(want))
            cat = "lost" if etype == main else "half_applied"
            found.add(cat, f"{op.id} {op.kind} ({op.outcome} {op.status}): "
                           f"{got[etype]} {etype}, expected {n}")
        elif got[etype] > most:
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
        expect(str(e["data"]["email"]).startswith("pii:v1:"), "email not sealed in the log")
        expect(e["user_email"] == info["email"], "email differs")
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
    elif k == "invite" and (e := first("org.invitation_created")):
        expect(e["stream"] == info["org_id"], "invitation in another org")
        expect(str(e["data"]["email"]).startswith("pii:v1:"), "email not sealed in the log")
        expect(str(e["data"]["token"]).startswith("pii:v1:"), "token not sealed in the log")
        expect(e["data"]["role"] == info["role"], "role differs")
    elif k == "request_reset" and (e := first("user.password_reset_requested")):
        expect(e["stream"] == info["user_id"], "reset of another user")
        expect(str(e["data"]["token"]).startswith("pii:v1:"), "token not sealed in the log")
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


def relay_lag(db: str, reader: str = "relay") -> tuple[int, int]:
    """Events after a reader's checkpoint: all of them, and those it can read
    now (older than every transaction still open on the server)."""
    row = psql(db, f"""
        SELECT count(*), count(*) FILTER (
                 WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))
        FROM auth_events e, log_checkpoints c WHERE c.name = '{reader}'
          AND (e.transaction_id, e.position) > (c.transaction_id, c.position)""")[0]
    behind, readable = row.split("|")
    return int(behind), int(readable)


MAIL_EVENTS = ("user.password_reset_requested", "org.invitation_created")


def check_mail(db: str, mail_dir: str, found: "Findings") -> tuple[int, int]:
    """Every mail the log asked for is in the mail folder, once per Message-ID
    or more (at least once: a kill between a send and the checkpoint resends
    it); none is missing. Returns (mails asked for, .eml files)."""
    ok, _ = wait_for(lambda: relay_lag(db, "mailer")[0] == 0, 120)
    if not ok:
        found.add("mail", f"the mailer is {relay_lag(db, 'mailer')[0]} events behind after 120 s")
    asked = set(psql(db, "SELECT event_id FROM auth_events WHERE event_type IN "
                         f"({', '.join(repr(t) for t in MAIL_EVENTS)})"))
    sent: Counter = Counter()
    files = [f for f in os.listdir(mail_dir) if f.endswith(".eml")] if os.path.isdir(mail_dir) else []
    for name in files:
        with open(os.path.join(mail_dir, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("message-id:"):
                    sent[line.split("<", 1)[-1].split(".", 1)[0]] += 1
                    break
    missing = asked - set(sent)
    if missing:
        found.add("mail", f"{len(missing)} of {len(asked)} mails asked for were never sent")
    if set(sent) - asked:
        found.add("mail", f"{len(set(sent) - asked)} mails sent that no event asked for")
    return len(asked), len(files)


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
