"""Debian's headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No driver and no Python package: JSON messages ending in NUL on fds 3 and 4. The dashboard's
browser test and scripts/dashboard_screenshots.py share it. Traffic stays on this machine: the
flags turn off every background request Chromium would make.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,1400", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """Chromium is missing, exited, did not answer, or a page did not do what was awaited."""


class Chromium:
    """One headless browser; ``open(url)`` gives a session id (a tab) for the other calls."""

    def __init__(self, profile: Path, log: Path, nice: int = 0):
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserError(f"{CHROMIUM} not found: install Debian's Chromium with: "
                               "sudo apt-get install -y chromium")
        # Above fd 4, so placing them at 3 and 4 in the child cannot clobber one another.
        to_browser, self._commands = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in os.pipe())
        self._replies, from_browser = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in os.pipe())
        self.log = log
        self.events: list[dict[str, Any]] = []  # what the browser reported between replies
        self._targets: dict[str, str] = {}  # session id -> its tab's target id

        def wire_pipe() -> None:  # runs in the child, before exec
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)
            os.nice(nice)

        with open(log, "wb") as log_file:
            self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}"],
                                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                            preexec_fn=wire_pipe, close_fds=False)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        """Run one DevTools command and return its result; events met on the way go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                if not select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise BrowserError(f"Chromium did not answer {method} within {timeout} s; see {self.log}")
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited during {method}:\n{self.log.read_text()[-2000:]}")
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]
            if "method" in reply:
                self.events.append(reply)

    def open(self, url: str, *, width: int = 1200, height: int = 1400, mobile: bool = False) -> str:
        """A new tab of that size showing ``url``, with console and log reporting on; its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._targets[session] = target
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain, {}, session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "mobile": mobile,
                                                         "deviceScaleFactor": 2 if mobile else 1}, session)
        self.send("Emulation.setScrollbarsHidden", {"hidden": True}, session)  # screenshots: the full width
        self.send("Page.navigate", {"url": url}, session)
        return session

    def close_tab(self, session: str) -> None:
        """Close the tab of that session (its page's connections close with it)."""
        self.send("Target.closeTarget", {"targetId": self._targets.pop(session)})

    def evaluate(self, session: str, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, timeout: float, what: str) -> Any:
        """The first truthy value of ``expression``, polled every 50 ms; BrowserError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(session, expression)):
            if time.monotonic() > deadline:
                raise BrowserError(f"the page did not show {what} within {timeout} s")
            time.sleep(0.05)  # polling a page that has no event to await from here
        return value

    def console_errors(self, session: str) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (failed loads) of that tab so far."""
        self.evaluate(session, "0")  # a round trip: whatever the page reported before it is read
        errors = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                words = (str(arg.get("value", arg.get("description"))) for arg in params["args"])
                errors.append(" ".join(words))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        return errors

    def screenshot(self, session: str, path: Path, selector: str | None = None) -> Path:
        """The whole page (beyond the viewport), or the element ``selector`` picks, as a PNG."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if selector:
            params["clip"] = {**self.evaluate(session, f"""(() => {{
                const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}}; }})()"""),
                "scale": 1}
        data = self.send("Page.captureScreenshot", params, session, timeout=30)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        try:
            os.write(self._commands, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)
