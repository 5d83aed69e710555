#!/usr/bin/env python3
"""YuNet against Haar on the issue's targets: photos, clips, small faces, time, crop agreement.

    python scripts/research/bench_detectors.py [--media ../shared/media] [--repeat 3]

Prints one block per target. Without --media (or where it is missing) only the generated inputs
run: a 2048x1536 composite of six astronaut faces of 40-150 px and a 640x480 frame with a 40 px
face (scikit-image's public-domain photo). Times are per processed frame, the two detectors
alternated frame by frame on the same frames, so load on the machine slows both alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))  # devkit: the generated media

from devkit.media import composite  # noqa: E402
from fer_edge.classifier import TFLiteExpressionClassifier  # noqa: E402
from fer_edge.config import Config, DetectorConfig  # noqa: E402
from fer_edge.daemon import build_pipeline  # noqa: E402
from fer_edge.faces import build_detector, crop_face  # noqa: E402
from fer_edge.photos import FacePredictor  # noqa: E402
from fer_edge.sources import Frame, to_gray  # noqa: E402
from fer_edge.tracking import iou  # noqa: E402

KINDS = ("haar", "yunet")


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a clip and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while (ok_frame := capture.read())[0]:
        frames.append(ok_frame[1])
    capture.release()
    return frames, fps


def photos(media: Path | None) -> None:
    """Faces found in stills, as `fer-edge predict` finds them."""
    predictors = {kind: FacePredictor.from_config(Config(detector=DetectorConfig(type=kind)))
                  for kind in KINDS}
    data, _ = composite()
    inputs = {"composite 2048x1536, six faces of 40-150 px (want 6)": data}
    if media:
        for name, want in (("face_classification_solvay_conference.jpg", 6), ("fer_no-faces.jpg", 0)):
            if (media / "photos" / name).is_file():
                inputs[f"{name} (want {want})"] = (media / "photos" / name).read_bytes()
    print("stills (fer-edge predict):")
    for label, blob in inputs.items():
        found = {kind: len(p.predict(blob)["faces"]) for kind, p in predictors.items()}
        print(f"  {label}: " + ", ".join(f"{kind} {n}" for kind, n in found.items()))


def small_face() -> None:
    """A 40 px face in a 640x480 frame, default settings of each detector."""
    data, _ = composite()
    photo = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:180, 200:280] = photo[150:230, 100:180]  # the composite's 40 px face and its margin
    found = {kind: len(build_detector(DetectorConfig(type=kind)).detect(frame)) for kind in KINDS}
    print("640x480 frame with a 40 px face (want 1): " + ", ".join(f"{k} {n}" for k, n in found.items()))


def clip(path: Path, repeat: int) -> None:
    """Recall, extra boxes and time per processed frame, the detectors alternated frame by frame."""
    frames, _fps = read_frames(path)
    detectors = {kind: build_detector(DetectorConfig(type=kind)) for kind in KINDS}
    seconds = dict.fromkeys(KINDS, 0.0)
    found = dict.fromkeys(KINDS, 0)
    extra = dict.fromkeys(KINDS, 0)
    for _ in range(repeat):
        for image in frames:
            for kind, detector in detectors.items():
                started = time.perf_counter()
                faces = detector.detect(image)
                seconds[kind] += time.perf_counter() - started
                found[kind] += bool(faces)
                extra[kind] += max(0, len(faces) - 1)
    runs = len(frames) * repeat
    ms = {kind: 1000 * seconds[kind] / runs for kind in KINDS}
    print(f"{path.name} ({len(frames)} frames, detection on every frame, {repeat} passes alternated):")
    for kind in KINDS:
        print(f"  {kind:<5} face found {found[kind] / runs:6.1%}, frames with a second box "
              f"{extra[kind] / runs:5.1%}, {ms[kind]:6.2f} ms per frame")
    print(f"  YuNet / Haar time per processed frame: {ms['yunet'] / ms['haar']:.2f}")


def agreement(path: Path) -> None:
    """Labels from YuNet crops against Haar crops on the frames both detect; flips per minute."""
    frames, fps = read_frames(path)
    classifier = TFLiteExpressionClassifier()
    detectors = {kind: build_detector(DetectorConfig(type=kind)) for kind in KINDS}
    same = both = 0
    for image in frames:
        gray = to_gray(image)
        boxes = {kind: d.detect(image) for kind, d in detectors.items()}
        for haar in boxes["haar"]:
            match = max(boxes["yunet"], key=lambda f, h=haar: iou(f.box, h.box), default=None)
            if match is None or iou(match.box, haar.box) < 0.3:
                continue
            both += 1
            labels = [classifier.classify(crop_face(gray, face)).label for face in (haar, match)]
            same += labels[0] == labels[1]
    print(f"{path.name}: labels of YuNet crops agree with Haar crops on {same}/{both} faces "
          f"({same / max(both, 1):.1%}; one pass per crop, no smoothing)")
    minutes = len(frames) / fps / 60
    for kind in KINDS:
        config = Config(detector=DetectorConfig(type=kind))
        pipeline = build_pipeline(dataclasses.replace(config, source=dataclasses.replace(
            config.source, spec=str(path))))
        flips, last = 0, None
        for index, image in enumerate(frames):
            pipeline.process(Frame(index, index / fps, image))
            if pipeline.last_results:
                label = pipeline.last_results[0][1].label
                flips += last is not None and label != last
                last = label
        print(f"  {kind:<5} label flips of the face (smoothed, as published): "
              f"{flips / minutes:.1f} per minute ({flips} in {60 * minutes:.1f} s)")


def main() -> int:
    """Run every target that its inputs allow."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    media = args.media if args.media.is_dir() else None
    photos(media)
    small_face()
    if media:
        for name in ("fer_woman2.mp4", "fer_test.mp4"):
            clip(media / "video" / name, args.repeat)
        agreement(media / "video" / "fer_woman2.mp4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
