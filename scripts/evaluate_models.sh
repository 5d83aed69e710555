#!/usr/bin/env bash
# Every figure of models/README.md: float and int8 accuracy of both shipped models on each
# split, the per-class reports (JSON, with calibration and FER+ accuracy), the int8 confusion
# matrices and reliability diagrams (PNG).
# Usage: scripts/evaluate_models.sh FER2013   (PYTHON: the interpreter; default the venv `make` builds)
set -euo pipefail
data=${1:?usage: $0 path/to/fer2013.npz (or fer2013.csv, or an image-folder root)}
data=$(realpath -m "$data")  # the caller's relative path, before the cd
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null || {
  echo "error: no $PYTHON; run make test first (it builds .venv with the host tools) or set PYTHON" >&2; exit 2; }
mkdir -p models/reports
evaluate() {  # MODEL SPLIT REPORT [the int8 graph's views: --mirror-average, --centre-crop, --blur]
  "$PYTHON" -m fer_convert evaluate "$1" --data "$data" --split "$2" --json "models/reports/$3" "${@:4}"
}
for split in PrivateTest PublicTest Training; do
  # the default model: the plain float network, the same through the views of its int8 graph
  # (the centre 47 px and its mirror: models/README.md), and the int8 file
  evaluate models/fer_edge.keras "$split" "float_$split.json"
  [ "$split" = Training ] ||
    evaluate models/fer_edge.keras "$split" "float_views_$split.json" --mirror-average --centre-crop 47
  evaluate models/fer_edge_int8.tflite "$split" "int8_$split.json"
  # the fast model: the plain float network, the same with the int8 graph's folded blur
  # (one pass per face), and the int8 file
  evaluate models/fer_edge_fast.keras "$split" "fast_float_$split.json"
  [ "$split" = Training ] ||
    evaluate models/fer_edge_fast.keras "$split" "fast_float_views_$split.json" --blur 0.5
  evaluate models/fer_edge_fast_int8.tflite "$split" "fast_int8_$split.json"
done
"$PYTHON" -m fer_convert evaluate models/fer_edge_int8.tflite --data "$data" --split PrivateTest \
  --confusion models/confusion_matrix.png > /dev/null
"$PYTHON" -m fer_convert evaluate models/fer_edge_fast_int8.tflite --data "$data" --split PrivateTest \
  --confusion models/confusion_matrix_fast.png > /dev/null
# calibration: how far each int8 model's confidence is from its accuracy, bin by bin
"$PYTHON" -m fer_convert evaluate models/fer_edge_int8.tflite --data "$data" --split PrivateTest \
  --reliability models/reliability.png > /dev/null
"$PYTHON" -m fer_convert evaluate models/fer_edge_fast_int8.tflite --data "$data" --split PrivateTest \
  --reliability models/reliability_fast.png > /dev/null
