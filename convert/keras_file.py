"""Loading a Keras model the user named, with one clear error when it cannot be read.

Keras 3 answers a .keras file that is not its zip archive (a corrupt or truncated download, a
.tflite renamed) with "File not found: ... Please ensure the file is an accessible `.keras` zip
file", even though the file exists. Every host tool loads the models it is given through
``load_keras_model``, which names what is wrong with the file and what to pass instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from fer_edge.errors import ModelError

REMEDY = "pass a .keras model written by fer_convert.train or fer_convert.soup"


def keras_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a Keras model file, before loading it (None: it may be one).

    Checks that it exists and, for a .keras name, that it is a zip archive; other names
    (a legacy .h5) are left to Keras.
    """
    path = Path(path)
    if not path.is_file():
        return f"model {path} not found; {REMEDY}"
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        return f"{path} is not a Keras archive (a .keras file is a zip that Keras writes); {REMEDY}"
    return None


def load_keras_model(path: str | Path) -> Any:
    """The ``keras.Model`` saved in ``path``.

    Raises ModelError (fer_edge.errors) naming the file when it is missing, not a Keras archive,
    or a file Keras cannot read (a layer it does not know, a damaged archive).
    """
    problem = keras_file_problem(path)
    if problem:
        raise ModelError(problem)
    import keras

    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {path} as a Keras model ({exc}); {REMEDY}") from None
