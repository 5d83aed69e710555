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
# against the FER+ majority, the reference the model card leads with: the int8 files' reports,
# confusion matrices and reliability diagrams (how far confidence is from accuracy, bin by bin)
for model in "" fast_; do
  file=models/fer_edge_${model%_}${model:+_}int8.tflite
  "$PYTHON" -m fer_convert evaluate "$file" --data "$data" --split PrivateTest --labels ferplus \
    --json "models/reports/${model}int8_PrivateTest_ferplus.json" \
    --confusion "models/confusion_matrix${model:+_fast}.png" --reliability "models/reliability${model:+_fast}.png" > /dev/null
done
