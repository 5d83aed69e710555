"""``fer-edge run`` in the background, as a board would run it, its log lines collected as they come."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Runs the CLI as another board would: with its own /etc/machine-id (a file the test wrote).
_AS_BOARD = ("import sys\nfrom pathlib import Path\nimport fer_edge.mqtt.identity as identity\n"
             "identity.MACHINE_ID_FILES = (Path(sys.argv[1]),)\nfrom fer_edge.cli import main\n"
             "sys.exit(main(sys.argv[2:]))\n")

# "stopped: 90 frames read from the source, 88 processed, 2 dropped (...); 1 event: 1 acknowledged, ..."
CLOSING_LINE = re.compile(r"stopped: (\d+) frames? read from the source, (\d+) processed[^;]*; "
                          r"(\d+) events?: (\d+) acknowledged, (\d+) refused by the broker, "
                          r"(\d+) dropped \(queue full or offline\), (\d+) not delivered at stop")


class DaemonProcess:
    """The daemon in a subprocess; ``machine_id`` stands in for /etc/machine-id (another board)."""

    def __init__(self, broker, *args: str, device_id: str = "test", env: dict[str, str] | None = None,
                 machine_id: Path | None = None) -> None:
        cli = [sys.executable, "-c", _AS_BOARD, str(machine_id)] if machine_id else \
            [sys.executable, "-m", "fer_edge"]
        command = [*cli, "run", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                   "--device-id", device_id, *args]
        self.process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def log(self) -> str:
        """Everything logged so far."""
        with self._changed:
            return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Return once ``text`` has been logged; fail with the log after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: text in "".join(self.lines), timeout):
                raise AssertionError(f"daemon never logged {text!r}; log:\n{''.join(self.lines)}")

    def wait(self, timeout: float = 60) -> int:
        """The exit status, once the process has exited."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, if still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def summary(self) -> dict[str, int]:
        """The closing line's figures (closing_figures)."""
        return closing_figures(self.log)


def closing_figures(log: str) -> dict[str, int]:
    """The daemon's closing line's figures: frames read and processed, events, acknowledged, refused,
    dropped, unsent."""
    match = CLOSING_LINE.search(log)
    assert match, log
    keys = ("read", "frames", "events", "acknowledged", "refused", "dropped", "unsent")
    return dict(zip(keys, map(int, match.groups()), strict=True))
