"""Peak memory and CPU of one still, in a fresh process: ``python -m devkit.peak predict|http FILE [haar]``.

predict: ``FacePredictor.predict_file`` as ``fer-edge predict`` runs it. http: the daemon's web
page (LocalHttpServer with the [images] defaults) on loopback, the file POSTed to /predict by
this process's own thread. Prints one JSON line: faces (or the error), the process's idle RSS
and its peak above idle (VmHWM, MB), its CPU seconds with and without the decode worker's, and
the worker's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def kb(field: str) -> int:
    """A size from /proc/self/status, in kB."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def cpu() -> float:
    """This process's CPU seconds and its waited-for children's (the decode workers that exited)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(mode: str, path: str, detector: str = "yunet") -> dict[str, Any]:
    """One still through ``mode``; see the module's docstring."""
    from fer_edge.classifier import TFLiteExpressionClassifier
    from fer_edge.config import DetectorConfig
    from fer_edge.imagefile import decode_worker
    from fer_edge.photos import FacePredictor, still_detector

    predictor = FacePredictor(still_detector(DetectorConfig(type=detector)), TFLiteExpressionClassifier())
    worker = decode_worker()
    server = None
    if mode == "http":
        from fer_edge.config import HttpConfig
        from fer_edge.web.server import LocalHttpServer

        server = LocalHttpServer(predictor, HttpConfig(port=0, max_upload_bytes=100_000_000)).start()
    data = Path(path).read_bytes() if mode == "http" else b""
    idle, cpu0, wall0 = kb("VmRSS"), cpu(), time.monotonic()
    try:
        if server is not None:
            request = urllib.request.Request(server.url + "predict", data=data,
                                             headers={"Content-Type": "application/octet-stream"})
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:
                    result: dict[str, Any] = json.load(answer)
            except urllib.error.HTTPError as error:
                result = json.load(error)
        else:
            result = predictor.predict_file(path)
        outcome: Any = len(result["faces"]) if "faces" in result else result["error"]
    except Exception as exc:  # reported, not raised: the figures matter either way
        outcome = f"{type(exc).__name__}: {exc}"
    worker_cpu = cpu() - cpu0  # this process alone: the worker counts once it has exited
    worker.close()
    figures = {"mode": mode, "detector": detector, "file": Path(path).name, "faces": outcome,
               "idle_mb": idle >> 10, "peak_above_idle_mb": (kb("VmHWM") - idle) >> 10,
               "cpu_s": round(cpu() - cpu0, 2), "wall_s": round(time.monotonic() - wall0, 2),
               "worker_peak_mb": worker.peak_rss_kb >> 10, "own_cpu_s": round(worker_cpu, 2)}
    if server is not None:
        server.stop()
    return figures


if __name__ == "__main__":
    print(json.dumps(measure(*sys.argv[1:])))
