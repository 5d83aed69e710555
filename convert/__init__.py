"""fer_convert: the host side of fer-edge (TensorFlow): train, evaluate, quantize, soup, compare, profile.

Run as ``fer-convert COMMAND`` (:mod:`fer_convert.cli`) or ``python -m fer_convert.COMMAND``.
"""

import os

# Before any module of this package can import TensorFlow: its C++ start-up lines (CPU features,
# oneDNN) would bury each tool's report and its one-line errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
