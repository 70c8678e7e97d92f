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
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

from common import (
    OP_DEADLINE, PASSWORDS, PG_HOST, PG_PORT, PG_USER, STATS, log, psql,
)
from process import Vouch, free_port
from ops import Runner
from load import Worker
from checks import (
    Findings, check_idempotency_records, check_log_invariants, check_op,
    check_mail, check_read_models, load_events, read_audit_ids, wait_for, wait_for_relay,
)

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
        "VOUCH_PII_KEY_FILE": os.path.join(workdir, "pii.key"),
        "VOUCH_RELAY": "true",
        "VOUCH_CHAINER": "true",
        "VOUCH_SIGNIN_EMAIL_FAILURES": "1000000",
        "VOUCH_SIGNIN_IP_ATTEMPTS": "1000000",
        "VOUCH_SIGNUP_IP_ATTEMPTS": "1000000",
        "VOUCH_MAIL_EMAIL_REQUESTS": "1000000",
        "VOUCH_MAIL_IP_REQUESTS": "1000000",
        "VOUCH_MAIL_URL": f"file://{os.path.join(workdir, 'mail')}",
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
        mails_asked, mail_files = check_mail(db, os.path.join(workdir, "mail"), found)
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
            "mails_asked": mails_asked, "mail_files": mail_files, "mail_problems": found.count("mail"),
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
            ("mails", f"{mails_asked} asked for, {mail_files} .eml files, {found.count('mail')} problems"),
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
