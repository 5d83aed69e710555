"""Files shipped beside the code: the models (models/), the systemd unit (systemd/), the example config.

A wheel installs them inside the package (``fer_edge/models/``, ``fer_edge/systemd/``); an
editable install or a source checkout keeps them in the repository's top-level folders.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root, in a source checkout


def shipped_path(*parts: str) -> Path:
    """The path of a shipped file, e.g. ``("models", "labels.txt")``: installed, or in the checkout.

    The result may not exist; callers say what is missing and how to get it.
    """
    installed = Path(str(resources.files("fer_edge"))).joinpath(*parts)
    return installed if installed.is_file() else CHECKOUT.joinpath(*parts)
