"""Fuzzing our own parsers and validators with Hypothesis and mutated files.

Each property says what may come out of hostile input: a header or ImageError (the image gate),
a picture within the cap or ImageError (the decode worker), ConfigError (the config loader),
a bool in linear time (host names). Anything else (another exception, a hang, a crash of this
process) fails. docs/web.md ("Fuzzed") lists what was tried and what it found.
"""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from devkit.hostile import ambiguous_tiff, huge_tile_tiff
from fer_edge.config import load_config
from fer_edge.config.rules import is_host, text_problem
from fer_edge.decode_worker import DecodeWorker
from fer_edge.errors import ConfigError, ImageError
from fer_edge.imagefile import read_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF89a", b"II*\x00", b"MM\x00*",
              b"RIFF\x00\x00\x00\x00WEBP"]


def seeds() -> list[bytes]:
    """Small valid images of every format we take, and the hostile TIFFs, to mutate."""
    image = np.random.default_rng(3).integers(0, 255, (24, 32, 3), np.uint8)
    out = []
    for fmt, options in [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("BMP", {}),
                         ("GIF", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
                         ("WEBP", {"lossless": True}), ("WEBP", {"quality": 50})]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, fmt, **options)
        out.append(buffer.getvalue())
    return [*out, ambiguous_tiff(64, 64), huge_tile_tiff((64, 64), 16)]


SEEDS = seeds()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, overwrite with extreme values, cut or repeat a few bytes."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(buffer))
        action = rng.randrange(4)
        if action == 0:
            buffer[at] ^= 1 << rng.randrange(8)
        elif action == 1:
            buffer[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
        elif action == 2:
            del buffer[at:]
            buffer += b"\x00"  # never empty
        else:
            buffer[at:at] = buffer[at:at + rng.randint(1, 64)] * rng.randint(1, 8)
    return bytes(buffer)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(SIGNATURES), st.binary(max_size=200))
def test_the_header_reader_gives_a_header_or_an_image_error(signature: bytes, rest: bytes) -> None:
    try:
        header = read_header(signature + rest)
    except ImageError:
        return
    assert header.width > 0 and header.height > 0


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(range(len(SEEDS))), st.integers(0, 2**32))
def test_mutated_real_files_give_a_header_or_an_image_error(seed: int, salt: int) -> None:
    try:
        header = read_header(mutate(SEEDS[seed], random.Random(salt)))
    except ImageError:
        return
    assert header.width > 0 and header.height > 0


@pytest.mark.slow
def test_a_decode_loop_over_mutated_files_never_takes_the_caller_down() -> None:
    """300 mutated files through the worker: each decodes within the cap or is an ImageError."""
    worker = DecodeWorker(1_000_000, cpu_seconds=2, wall_seconds=5, memory_bytes=128 << 20)
    rng = random.Random(26)
    outcomes = {"decoded": 0, "refused by the header": 0, "refused by the decoder": 0}
    started = worker.started
    for _ in range(300):
        data = mutate(rng.choice(SEEDS), rng)
        try:
            header = read_header(data)
            if header.pixels > 1_000_000:
                raise ImageError("over the cap")
        except ImageError:
            outcomes["refused by the header"] += 1
            continue
        try:
            image = worker.decode(data, cv2.IMREAD_COLOR, f"a {header.format}")
        except ImageError:
            outcomes["refused by the decoder"] += 1
            continue
        assert image.shape[0] * image.shape[1] <= 1_000_000 and image.dtype == np.uint8
        outcomes["decoded"] += 1
    assert all(outcomes.values()), outcomes  # each path was taken
    print(outcomes, "workers started:", worker.started - started)
    assert worker.decode(SEEDS[2], cv2.IMREAD_GRAYSCALE).shape == (24, 32)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300))
def test_host_names_and_text_checks_take_any_text(text: str) -> None:
    assert isinstance(is_host(text), bool)
    problem = text_problem(text)
    assert problem is None or "control character" in problem or "characters long" in problem


def test_the_host_check_is_linear_where_the_old_regex_backtracked() -> None:
    started = time.perf_counter()
    for length in range(1, 254):
        is_host("a" * length + "!")
        is_host("a-" * (length // 2) + ".")
    assert time.perf_counter() - started < 1.0  # the old pattern: 2 s at 24 characters, 25 s at 28


TOML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
KEYS = st.sampled_from(["source", "mqtt", "http", "images", "homeassistant", "detector", "log_level", "x"])
SUBKEYS = st.sampled_from(["host", "port", "spec", "token_file", "allowed_hosts", "max_pixels", "enabled",
                           "device_id", "username", "threads", "type", "y"])


def toml_value(value: object) -> str:
    """A TOML literal for what Hypothesis drew (None becomes an empty inline table)."""
    if value is None or value == {}:
        return "{}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, st.dictionaries(SUBKEYS, TOML_VALUES, max_size=4), max_size=4))
def test_any_config_loads_or_is_a_config_error(tmp_path: Path, tables: dict[str, dict[str, object]]) -> None:
    text = "".join(f"[{table}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in body.items())
                   for table, body in tables.items())
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    try:
        load_config(path, environ={})
    except ConfigError as error:
        assert all(len(problem) < 2000 for problem in error.problems)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_any_bytes_as_a_config_file_are_a_config_error_at_worst(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(raw)
    try:
        load_config(path, environ={})
    except ConfigError:
        pass
