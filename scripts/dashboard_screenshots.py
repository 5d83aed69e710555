"""Screenshots of the dashboard for docs/web.md, taken from the real daemon in headless Chromium.

    python scripts/dashboard_screenshots.py [--out docs/images]

The daemon runs on the generated video of a real face (scikit-image's public-domain astronaut)
with the page and the preview on and a local mosquitto; each state is awaited on the page
before its picture is taken:

- dashboard.png: live view, the face's bars, the timeline with points, health, events (desktop);
- dashboard-upload.png: the photo panel after a photo of six faces was classified;
- dashboard-phone.png: the same page on a phone-sized screen (390x844 CSS pixels).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devkit.broker import MosquittoBroker, free_port
from devkit.chromium import Chromium
from devkit.media import composite, make_face_video

ROOT = Path(__file__).resolve().parents[1]
LIVE = ("document.getElementById('live')?.naturalWidth > 0 && document.querySelector('#live-faces .face') "
        "&& +document.getElementById('timeline').dataset.points >= 8 "
        "&& document.querySelectorAll('#health dd.good').length >= 3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fer-edge-screenshots-"))
    video = make_face_video(work / "face.avi", frames=90, fps=15, step=1)
    photo = work / "group.png"
    photo.write_bytes(composite()[0])
    broker = MosquittoBroker(work / "mosquitto", ()).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "FER_EDGE_HTTP__ENABLED": "true", "FER_EDGE_HTTP__PORT": str(port)}
    daemon = subprocess.Popen([sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--loop",
                               "--preview", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                               "--device-id", "hall-pi", "--log-level", "warning"], env=env)
    browser = Chromium(work / "profile", work / "chromium.log")
    try:
        deadline = time.monotonic() + 60
        session = None
        while session is None:  # the page answers once the model is loaded
            try:
                urllib.request.urlopen(url + "status", timeout=2).close()
                session = browser.open(url, width=1200, height=1500)
            except OSError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("the daemon's page did not come up") from None
                time.sleep(0.2)
        browser.wait_for(session, LIVE, timeout=30,
                         what="the live view, a face, 8 timeline points and health")
        shots = [browser.screenshot(session, args.out / "dashboard.png")]

        root = browser.send("DOM.getDocument", {}, session)["root"]["nodeId"]
        node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "#image"}, session)["nodeId"]
        browser.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(photo)]}, session)
        browser.wait_for(session, "document.body.dataset.state === 'done'", timeout=30,
                         what="the photo's faces")
        shots.append(browser.screenshot(session, args.out / "dashboard-upload.png", "#upload-panel"))

        phone = browser.open(url, width=390, height=844, mobile=True)
        browser.wait_for(phone, LIVE, timeout=30, what="the page on a phone")
        shots.append(browser.screenshot(phone, args.out / "dashboard-phone.png"))
        errors = browser.console_errors(session) + browser.console_errors(phone)
    finally:
        browser.close()
        daemon.terminate()
        daemon.wait(timeout=10)
        broker.stop()
    for shot in shots:
        print(f"wrote {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}")
    if errors:
        raise SystemExit(f"the page logged errors: {errors}")


if __name__ == "__main__":
    main()
