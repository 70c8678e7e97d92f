"""Schemathesis hooks for vouch (loaded by run.sh through SCHEMATHESIS_HOOKS).

- The caller of each pass: VOUCH_ST_AS=admin authenticates every request with
  the bootstrap admin API key; VOUCH_ST_AS=user with an access token of a
  signed-in user, signing in again whenever vouch answers 401 (the run may sign
  that session out or revoke it).
- The `Idempotency-Key` header: run.sh probes whether vouch checks it
  (VOUCH_ST_IDEMPOTENCY=enforced) or ignores it (=ignored). Ignored, the header
  is dropped from the schema: an invalid key would be accepted and reported as
  accepted negative data, though nothing reads it. Enforced, each positive test
  case's key is made unique (its generated text plus a random suffix, still
  within the schema), so that two cases that happen to draw the same key do not
  get 422 `idempotency_key_reused` for a body they never sent before; negative
  cases keep their invalid keys, which vouch must answer with 422.
"""

import os
import uuid

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

AS = os.environ.get("VOUCH_ST_AS", "admin")
BASE_URL = os.environ.get("VOUCH_ST_BASE_URL", "http://127.0.0.1:8080")
IDEMPOTENCY = os.environ.get("VOUCH_ST_IDEMPOTENCY", "ignored")
IDEMPOTENCY_KEY = "Idempotency-Key"


@schemathesis.auth(refresh_interval=600)
class VouchAuth:
    """The credential of this pass, as `Authorization: Bearer`."""

    def get(self, case, ctx):
        if AS == "admin":
            return os.environ["VOUCH_ST_ADMIN_KEY"]
        res = requests.post(
            f"{BASE_URL}/v1/sessions",
            json={
                "email": os.environ["VOUCH_ST_USER_EMAIL"],
                "password": os.environ["VOUCH_ST_USER_PASSWORD"],
            },
            timeout=30,
        )
        res.raise_for_status()
        return res.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_load_schema(context, raw_schema):
    if IDEMPOTENCY == "enforced":
        return
    for item in raw_schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [
                    p for p in operation["parameters"] if p.get("name") != IDEMPOTENCY_KEY
                ]


@schemathesis.hook
def before_call(context, case, kwargs):
    if IDEMPOTENCY != "enforced" or not case.headers or IDEMPOTENCY_KEY not in case.headers:
        return
    meta = case.meta
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER):
        return
    key = str(case.headers[IDEMPOTENCY_KEY])
    case.headers[IDEMPOTENCY_KEY] = f"{key[:200]}-{uuid.uuid4().hex}"
