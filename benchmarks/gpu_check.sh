#!/usr/bin/env bash
# The kit's GPU check, for a lent CUDA machine that has torch but no Jupyter (see README, Speed).
# Runs the CUDA paths for real: graded tests and mutants on the GPU, the GPU helper tests, the
# notebook's code top to bottom (python -m helpers run --plain), and the throughput benchmark.
# Usage: OUT=some/folder bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
echo "== graded tests, mutants and GPU helpers on CUDA"
python3 -m pytest -q -p no:cacheprovider tests/test_problem_unittests.py tests/test_mutants.py \
    tests/test_gpu.py tests/test_fastdata.py 2>&1 | tail -25
echo "== the notebook's code, full run, on CUDA"
python3 -m helpers run --plain --out "$OUT/run" 2>&1 | tail -15
cat "$OUT/run/run.json"
echo "== throughput: course recipe vs the kit's path"
python3 -m benchmarks.throughput --device cuda --repeats 2 --json "$OUT/throughput_cuda.json" 2>&1 | tail -15
