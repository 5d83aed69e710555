#!/usr/bin/env bash
# Every figure of models/README.md: float and int8 accuracy on each split, the per-class
# reports (JSON) and the int8 confusion matrix (PNG). Usage: scripts/evaluate_models.sh FER2013
set -euo pipefail
data=${1:?usage: $0 path/to/fer2013.npz (or fer2013.csv, or an image-folder root)}
cd "$(dirname "$0")/.."
mkdir -p models/reports
for split in PrivateTest PublicTest Training; do
  python -m convert.evaluate models/fer_edge.keras --data "$data" --split "$split" \
    --json "models/reports/float_$split.json"
  python -m convert.evaluate models/fer_edge_int8.tflite --data "$data" --split "$split" \
    --json "models/reports/int8_$split.json"
done
python -m convert.evaluate models/fer_edge_int8.tflite --data "$data" --split PrivateTest \
  --confusion models/confusion_matrix.png > /dev/null
