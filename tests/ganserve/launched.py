"""`ganserve up` started as `make run` starts it, in a session of its own: a SIGINT to that session is a
terminal's Ctrl-C (the launcher, the worker and the API all get it)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.utils import ROOT, free_port

READY = re.compile(r"^ganserve is ready: (http://\S+?)/ ")
KEY = re.compile(r"^API key \(an admin key: jobs, uploads, every model\): (\S+)$")


class Launched:
    """`python -m ganserve.cli up` with GANSERVE_DATA and GANSERVE_REPOSITORY given and no other GANSERVE_ setting
    (so it starts its own Redis and makes a key, as on a fresh clone), until its last lines are printed."""

    def __init__(self, data: Path, repository: str, timeout: float = 600, **env: str):
        self.port = free_port()
        self.data = data
        clean = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ganserve.cli", "up", "--port", str(self.port)], cwd=ROOT,
            env={**clean, "GANSERVE_DATA": str(data), "GANSERVE_REPOSITORY": repository, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.try_commands():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.interrupt()
                raise AssertionError("ganserve up did not print its last lines:\n" + "\n".join(self.lines))
            time.sleep(0.2)
        self.ready_lines = list(self.lines)  # what it printed up to its last line
        self.url = next(m[1] for line in self.lines if (m := READY.match(line)))
        self.key = next((m[1] for line in self.lines if (m := KEY.match(line))), None)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def try_commands(self) -> list[str]:
        """The three commands after `try:`, once all three are printed."""
        if "try:" not in self.lines:
            return []
        commands = self.lines[self.lines.index("try:") + 1:][:3]
        return [c.strip() for c in commands] if len(commands) == 3 else []

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it to every process of the foreground group; the exit status."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise

    def session(self) -> list[int]:
        """The processes still in its session (the worker and the API until they stop)."""
        out = subprocess.run(["pgrep", "-s", str(self.process.pid)], capture_output=True, text=True, check=False).stdout
        return [int(pid) for pid in out.split()]
