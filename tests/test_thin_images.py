"""Thin images (a few pixels high) made YuNet's box code raise OverflowError: `predict` skipped the
rest of its images and the page answered 500. Both now answer every image."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from devkit.media import astronaut_bgr
from fer_edge.classifier import TFLiteExpressionClassifier
from fer_edge.cli import main
from fer_edge.config import DetectorConfig, HttpConfig
from fer_edge.photos import FacePredictor, still_detector

THIN = [(4001, 33), (2000, 20), (1280, 12), (640, 8)]


@pytest.fixture(scope="module")
def thin_pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("thin")
    rng = np.random.default_rng(0)
    paths = []
    for width, height in THIN:
        path = folder / f"thin-{width}x{height}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_predict_answers_every_image_after_thin_ones(thin_pngs, tmp_path, capsys) -> None:
    astronaut = tmp_path / "astronaut.png"
    cv2.imwrite(str(astronaut), astronaut_bgr())
    assert main(["predict", *map(str, thin_pngs), str(astronaut)]) == 0
    out, err = capsys.readouterr()
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["image"] for a in answers] == [*map(str, thin_pngs), str(astronaut)]
    assert all("faces" in a for a in answers) and len(answers[-1]["faces"]) == 1
    assert "Traceback" not in err


def test_the_page_answers_thin_images_with_200(thin_pngs) -> None:
    from fer_edge.web.server import LocalHttpServer

    predictor = FacePredictor(still_detector(DetectorConfig(type="yunet")), TFLiteExpressionClassifier())
    server = LocalHttpServer(predictor, HttpConfig(port=0)).start()
    try:
        for path in thin_pngs:
            request = urllib.request.Request(f"{server.url}predict", data=path.read_bytes(),
                                             headers={"Content-Type": "image/png"}, method="POST")
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200 and "faces" in json.loads(answer.read()), path.name
    finally:
        server.stop()
