"""A throwaway mosquitto on a free loopback port, from a generated config, stopped by PID.

The demo's broker and the test suite's: ``MosquittoBroker(workdir).start()`` ... ``.stop()``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


class BrokerUnavailable(RuntimeError):
    """mosquitto is missing or would not start."""


def find_tool(path: str) -> str:
    """Return the path of a mosquitto tool, or fail with the command that installs it."""
    found = path if os.access(path, os.X_OK) else shutil.which(Path(path).name)
    if not found:
        raise BrokerUnavailable(f"{Path(path).name} not found (looked at {path} and on PATH); "
                                "install it with: sudo apt-get install -y mosquitto")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MosquittoBroker:
    """A mosquitto process on one loopback port; `stop()` then `start()` restarts it on that port."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, config_lines: Sequence[str] = (), *,
                 users: dict[str, str] | None = None, persistence: bool = False) -> None:
        self.executable = find_tool(MOSQUITTO)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        # Run as ourselves: as root, mosquitto would switch to the "mosquitto" user
        # and lose access to the files in tmp_path.
        lines = [f"user {pwd.getpwuid(os.geteuid()).pw_name}", f"log_dest file {self.log_file}",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        else:
            lines.append("persistence false")
        if users:
            password_file = workdir / "passwords"
            make_password_file(password_file, users)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        elif not any(line.split()[:1] == ["allow_anonymous"] for line in config_lines):
            lines.append("allow_anonymous true")
        # Listener-specific lines (certfile, keyfile, ...) must follow the listener line.
        lines += [f"listener {self.port} {self.host}", *config_lines]
        self.config_file.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 5.0) -> MosquittoBroker:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return self
        with open(self.workdir / "mosquitto.stderr", "ab") as stderr:
            self._process = subprocess.Popen([self.executable, "-c", str(self.config_file)],
                                             stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited with status {self._process.returncode}:\n"
                                        f"{self.log_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerUnavailable(f"mosquitto did not listen on {self.host}:{self.port} "
                                            f"within {timeout} s") from None
                time.sleep(0.01)

    def stop(self) -> None:
        """Stop the broker by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a paused broker would not see SIGTERM
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL, paused or not): clients see their connections reset."""
        assert self._process is not None, "broker not started"
        self._process.kill()
        self._process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        assert self._process is not None, "broker not started"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        assert self._process is not None, "broker not started"
        self._process.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """The broker's log and stderr so far, for failure messages."""
        parts = [p.read_text(errors="replace") for p in (self.log_file, self.workdir / "mosquitto.stderr")
                 if p.exists()]
        return "\n".join(parts)


def make_password_file(path: Path, users: dict[str, str]) -> None:
    """Write a mosquitto password file with `mosquitto_passwd -b`."""
    tool = find_tool(MOSQUITTO_PASSWD)
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run([tool, *create, "-b", str(path), user, password], check=True, capture_output=True)
    path.chmod(0o600)
