"""fer_edge.web.preview: the live preview's frames, drawn once per frame and kept to its frame rate."""

from __future__ import annotations

import time

import cv2
import numpy as np
from fer_edge.classifier import Expression
from fer_edge.overlay import EMOTION_COLOURS
from fer_edge.sources import Frame
from fer_edge.web.preview import PreviewFeed

HAPPY = Expression("happy", 0.87, {"happy": 0.87, "neutral": 0.13})


def test_preview_feed_freezes_boxes_skips_old_frames_and_encodes_once() -> None:
    feed = PreviewFeed(max_fps=1000)
    assert feed.wait_jpeg(0, timeout=0.05) is None  # nothing yet

    class LiveTrack:  # a Track moves on with the next frame
        id, box = 3, (20, 20, 40, 40)

    track, frame = LiveTrack(), Frame(0, time.time(), np.zeros((100, 100), np.uint8))
    feed.update(frame, [(track, HAPPY)])
    track.box = (60, 60, 30, 30)
    feed.update(frame, [(track, HAPPY)])  # the same frame again: ignored
    seq, jpeg = feed.wait_jpeg(0)
    assert seq == 1 and feed.wait_jpeg(seq, timeout=0.05) is None
    assert feed.wait_jpeg(0) == (seq, jpeg)  # a second viewer gets the cached encoding
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(image[40, 20].astype(int) - EMOTION_COLOURS["happy"]).max() < 40  # drawn where it was


def test_preview_feed_keeps_to_its_frame_rate() -> None:
    feed = PreviewFeed(max_fps=5)
    for index in range(10):  # ten frames in well under 0.2 s
        feed.update(Frame(index, time.time(), np.zeros((10, 10), np.uint8)), [])
    assert feed.wait_jpeg(0)[0] == 1
