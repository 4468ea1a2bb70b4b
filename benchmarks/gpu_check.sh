#!/usr/bin/env bash
# The engine's GPU check, run as is on any machine with CUDA (about 3-5 minutes on one
# modern GPU): the CUDA-marked tests, then the bench on the GPU for resnet18 layer4 and for
# layer1+layer4 sharing one forward pass. Expected output: benchmarks/RESULTS.md, "GPU check".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: this check needs a GPU")'
"$PY" -m pytest tests/engine -m gpu -q -p no:cacheprovider
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
WORKERS=$(( $(nproc) > 8 ? 8 : $(nproc) ))
"$PY" -m benchmarks.engine_bench --device cuda --images 2000 --data "$DATA/set" --workers "$WORKERS" --layers layer4
"$PY" -m benchmarks.engine_bench --device cuda --images 2000 --data "$DATA/set" --workers "$WORKERS" --layers layer1,layer4
