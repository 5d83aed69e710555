"""Peak memory and CPU of photos at the pixel cap and of hostile files, each in a fresh process.

    python scripts/bench_untrusted.py [--detector haar] [--quick]

Makes 40 MP pictures of the six astronaut faces (devkit.media's composite, scaled up) in every
format we decode, and the hostile files of issue 26 (devkit.hostile), then runs each through
``fer-edge predict``'s path and through the daemon's web page (devkit.peak). Peak RSS is the
process's VmHWM above its idle RSS; the decode worker's own peak is beside it (its idle size is
about 70 MB). CPU is the process's and its worker's together.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from devkit.hostile import ambiguous_tiff, endless_progressive_jpeg, huge_tile_tiff
from devkit.media import composite
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (7280, 5460)  # 39.7 MP, under the 40 MP default cap


def pictures(directory: Path, quick: bool) -> list[Path]:
    """The files to measure, written into ``directory``."""
    data, _ = composite()
    big = cv2.resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), SIZE)
    rgb = Image.fromarray(cv2.cvtColor(big, cv2.COLOR_BGR2RGB))
    formats = [("baseline.jpg", "JPEG", {"quality": 85}), ("progressive.jpg", "JPEG", {"progressive": True}),
               ("flat.png", "PNG", {"compress_level": 1}), ("lossy.webp", "WEBP", {"quality": 60}),
               ("palette.gif", "GIF", {}), ("lzw.tif", "TIFF", {"compression": "tiff_lzw"})]
    paths = []
    for name, fmt, options in formats[:1] if quick else formats:
        buffer = io.BytesIO()
        rgb.save(buffer, fmt, **options)
        (directory / name).write_bytes(buffer.getvalue())
        paths.append(directory / name)
    hostile = {"ambiguous-64MP.tif": ambiguous_tiff(8000, 8000),
               "ambiguous-400MP.tif": ambiguous_tiff(20000, 20000), "tile-16x16.tif": huge_tile_tiff(),
               "endless-scans.jpg": endless_progressive_jpeg(6000, 6000, 1000)}
    for name, data in hostile.items():
        (directory / name).write_bytes(data)
        paths.append(directory / name)
    return paths


def run(mode: str, path: Path, detector: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    done = subprocess.run([sys.executable, "-m", "devkit.peak", mode, str(path), detector],
                          capture_output=True, text=True, env=env, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="yunet", choices=("yunet", "haar"))
    parser.add_argument("--quick", action="store_true", help="the baseline JPEG and the hostile files only")
    args = parser.parse_args()
    print("| file | size | mode | answer | peak above idle | worker peak | CPU (with worker) | wall |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        for path in pictures(Path(directory), args.quick):
            for mode in ("predict", "http"):
                r = run(mode, path, args.detector)
                answer = f"{r['faces']} faces" if isinstance(r["faces"], int) else str(r["faces"])[:60]
                print(f"| {path.name} | {path.stat().st_size / 1e6:.2f} MB | {mode} | {answer} | "
                      f"{r['peak_above_idle_mb']} MB | {r['worker_peak_mb']} MB | {r['cpu_s']} s | "
                      f"{r['wall_s']} s |", flush=True)


if __name__ == "__main__":
    main()
