"""What an int8 file records of its making: the test-time views and the temperature.

The views change what the float twin of an int8 graph must compute (``fer_convert.compare``
rebuilds it from the Keras model), and cannot be read back from the ops alone: a centre crop
and a test-time crop are both a slice and a resize. ``quantize`` writes them as a TFLite
metadata entry named ``fer_edge_views`` holding JSON; LiteRT ignores entries it does not know.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .model import TTA

NAME = "fer_edge_views"


def with_views(tflite: bytes, tta: TTA, temperature: float) -> bytes:
    """``tflite`` with a ``fer_edge_views`` metadata entry: the TTA fields and the temperature."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    buffer = schema.BufferT()
    record = {**dataclasses.asdict(tta), "temperature": temperature}
    buffer.data = np.frombuffer(json.dumps(record, sort_keys=True).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != NAME.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_views(tflite_path: str | Path) -> tuple[TTA, float] | None:
    """The TTA and temperature ``with_views`` recorded, or None for a file without the entry."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(tflite_path))
    for entry in model.metadata or []:
        if entry.name == NAME.encode():
            record = json.loads(bytes(model.buffers[entry.buffer].data).decode())
            temperature = float(record.pop("temperature"))
            return TTA(**record), temperature
    return None
