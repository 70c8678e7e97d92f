"""The vouch process under test: started, killed with SIGKILL, restarted."""

from __future__ import annotations
import os
import signal
import socket
import subprocess
import threading
import time

from common import ConnectionFailed, http_call

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
