#!/usr/bin/env bash
# The kit's GPU check, for a lent CUDA machine that has torch but no Jupyter (see docs/performance.md).
# Most important first, each step under a time cap, all inside BUDGET seconds (default 540, to
# fit one 10-minute command):
#   (1) throughput at 32x32: course recipe, the kit (helpers.gpu), and the kit with each opt-in
#       option (fp32; fused Adam and torch.compile reduce-overhead from helpers/scale/, both),
#       compile time apart;
#   (2) SWD after the same number of steps: the kit, fp32, and all options together;
#   (3) the GPU tests (tests/test_gpu.py: no host sync outside logging steps, compiled nets,
#       fused Adam); (4) the same throughput at 64x64; (5) the other compile modes (default,
#       max-autotune: minutes to compile); (6) graded tests and mutants on CUDA, the notebook's
#       full run, torchrun + DDP (also with --compile reduce-overhead --fused-adam).
# Every step's output is kept in $OUT/*.log, the benchmarks' results in $OUT/*.json.
# Usage: OUT=some/folder bash benchmarks/gpu_check.sh      (BUDGET=900 for a longer lease)
set -uo pipefail
OUT=${OUT:-gpu_out}
BUDGET=${BUDGET:-540}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
deadline=$((SECONDS + BUDGET))

# step NAME CAP COMMAND...: run COMMAND for at most CAP seconds (less if the budget is short)
step() {
    local name=$1 cap=$2
    shift 2
    local left=$((deadline - SECONDS))
    if ((left < 20)); then
        echo "== $name: skipped, the budget ($BUDGET s) is spent"
        return
    fi
    ((cap > left)) && cap=$left
    echo "== $name (at most $cap s; $left s of the budget left)"
    timeout "$cap" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    ((rc == 124)) && echo "   ($name stopped after $cap s; its log so far is in $OUT/$name.log)"
    ((rc != 0 && rc != 124)) && echo "   ($name exited with status $rc)"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"

# (1) 32x32, conv_dim 64, batch 128, the default variants
step throughput_32 240 python3 -m benchmarks.throughput --device cuda --steps 300 --warmup 20 \
    --json "$OUT/throughput_32.json"
# (2) SWD x 1e3 after 1,000 steps from the same seed, against 1,000 held-out faces
step swd_32 150 python3 -m benchmarks.throughput --device cuda --steps 100 --warmup 20 \
    --variants fp32 fused+compile=reduce-overhead --swd-steps 1000 --n-eval 1000 \
    --json "$OUT/swd_32.json"
# (3) the GPU path's own tests, CUDA branches included
step test_gpu 150 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
# (4) the paper's 64x64 DCGAN (built from the notebook's conv/deconv)
step throughput_64 120 python3 -m benchmarks.throughput --device cuda --image-size 64 \
    --steps 200 --warmup 20 --variants fused+compile=reduce-overhead \
    --json "$OUT/throughput_64.json"
# (5) the other compile modes; max-autotune spends minutes autotuning
step throughput_32_other_modes 240 python3 -m benchmarks.throughput --device cuda --steps 300 \
    --warmup 20 --variants compile=default fused+compile=max-autotune \
    --json "$OUT/throughput_32_other_modes.json"
# (6) the rest of the kit on CUDA
step graded_tests 120 python3 -m pytest -q -p no:cacheprovider tests/test_problem_unittests.py \
    tests/test_mutants.py tests/test_fastdata.py
step notebook_run 120 python3 -m helpers run --plain --out "$OUT/run"
[ -f "$OUT/run/run.json" ] && cat "$OUT/run/run.json"
n_gpus=$(nvidia-smi -L | wc -l)
step ddp_quick 60 torchrun --standalone --nproc_per_node="$n_gpus" -m helpers distributed \
    --quick --out "$OUT/ddp_quick"
step ddp_quick_compiled 90 torchrun --standalone --nproc_per_node="$n_gpus" -m helpers \
    distributed --quick --compile reduce-overhead --fused-adam --out "$OUT/ddp_quick_compiled"
step ddp 180 torchrun --standalone --nproc_per_node="$n_gpus" -m helpers distributed \
    --out "$OUT/ddp"
[ -f "$OUT/ddp/metrics.json" ] && cat "$OUT/ddp/metrics.json"
echo "== done in $SECONDS s"
