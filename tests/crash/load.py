"""The load threads and what each knows of the world it made."""

from __future__ import annotations
import json
import random
import threading
import time
from dataclasses import dataclass, field

from common import (
    ConnectionFailed, KEY_SCOPES, MAX_LIVE_SESSIONS, MAX_ORGS, MAX_USERS, PASSWORDS,
    ROLES, STATS, http_call,
)
from ops import Op, Runner

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
            (0.8, self.invite), (0.6, self.request_reset),
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
        # Adding a user by id is vouch:admin's alone (people join by invitation).
        by, token = "admin", self.admin
        op = self.op("add_member", "POST", f"/v1/orgs/{org.id}/members",
                     {"user_id": user.id, "role": role}, token, (201,), org_id=org.id,
                     user_id=user.id, role=role, by=by)
        if op.applied:
            org.members[user.id] = role

    def invite(self):
        org = self.pick(self.orgs)
        if org is None:
            return False
        by, token = self.manager_token(org)
        oid = self.next_id()
        email = f"{oid}@invitee.crash.example.com"
        role = self.rng.choice(["admin", "member"])
        self.op("invite", "POST", f"/v1/orgs/{org.id}/invitations",
                {"email": email, "role": role}, token, (201,), oid=oid, org_id=org.id,
                email=email, role=role, by=by)

    def request_reset(self):
        user = self.pick([u for u in self.known_users() if not u.disabled])
        if user is None:
            return False
        self.op("request_reset", "POST", "/v1/password-reset", {"email": user.email}, None,
                (202,), user_id=user.id)

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
