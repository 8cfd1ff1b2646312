#!/usr/bin/env bash
# Issue 20's run on a lent GPU machine (no registry, 64 MiB of files): D²4FAD trained for the paper's 70 epochs
# leave-one-task-out, then the inference benchmark. Prepared here on the CPU machine with
# `bash scripts/prepare_gpu_files.sh` (.device/: the tasks through their presets at 128 px, and the dependencies),
# run there as `bash scripts/gpu_run.sh` with `.device` carried; everything it makes lands in $OUT.
# Stages (STAGES, default all): tests (tests/test_cuda.py), speed (training episodes/s on the GPU), protocol (each
# held-out task in its own process, all on the one GPU: D2FAD with D2FAD[untrained=True], then
# D2FAD[val_at_start=False] with --config_file, a copy of train.json with val_at_start false, renamed so when the
# rows are merged; the baselines in one more process), benchmark (eager grid), compiled (torch.compile rows).
# Every process is held to OMP_NUM_THREADS=1: nine processes with 16 OpenMP threads each on the 16 cores made a
# training step take 12 s on 2026-12-04 (docs/PERFORMANCE.md, "GPU").
set -u
OUT=${OUT:-runs/gpu/out}
TRAIN_LIMIT=${TRAIN_LIMIT:-380}
BENCH_LIMIT=${BENCH_LIMIT:-100}
COMPILE_LIMIT=${COMPILE_LIMIT:-50}
RUNS=runs/gpu
TASKS="brain_tumor_mri chest_xray fundus_glaucoma histopathology_lung"
CONFIG=${CONFIG:-configs/protocol/medfsad_lite0_gpu.json}
STAGES=${STAGES:-tests speed protocol benchmark compiled}
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
has() { [[ " $STAGES " == *" $1 "* ]]; }
mkdir -p "$OUT" $RUNS
python3 -m zipfile -e .device/site.zip /tmp/site && export PYTHONPATH=/tmp/site:$PWD || exit 1
python3 -m zipfile -e .device/medfsad128.zip .device/medfsad128 || exit 1
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, monai, ignite; print(torch.__version__, torch.version.cuda, monai.__version__, ignite.__version__)"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

python3 - <<'EOF'
import json
from monai_d2fad.protocol.training import BUNDLE_TRAIN_CONFIG
from monai_d2fad.protocol.variants import ABLATIONS
config = json.load(open(BUNDLE_TRAIN_CONFIG))
config.update(ABLATIONS["selection"]["epochs_only"])
json.dump(config, open("runs/gpu/train_epochs_only.json", "w"), indent=4)
EOF

if has tests; then
    timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py > $RUNS/test_cuda.log 2>&1
    tail -n 3 $RUNS/test_cuda.log
fi
if has speed; then
    timeout 120 python3 -m monai_d2fad.training_benchmark --data_dir .device/medfsad128 --device cuda --steps 50 \
        --output "$OUT/benchmark_training_gpu.json" > $RUNS/benchmark_training.log 2>&1
    grep -E "episodes/s|speed-up" $RUNS/benchmark_training.log
fi
if has protocol; then
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader -l 10 > $RUNS/gpu_memory.csv &
    SMI=$!
    start=$(date +%s)
    for t in $TASKS; do
        OMP_NUM_THREADS=1 timeout "$TRAIN_LIMIT" python3 -m monai_d2fad.protocol --config $CONFIG --test_tasks $t \
            --methods d2fad --ablations untrained --output $RUNS/d2fad_$t > $RUNS/d2fad_$t.log 2>&1 &
        OMP_NUM_THREADS=1 timeout "$TRAIN_LIMIT" python3 -m monai_d2fad.protocol --config $CONFIG --test_tasks $t \
            --methods d2fad --config_file $RUNS/train_epochs_only.json --output $RUNS/epochs_only_$t \
            > $RUNS/epochs_only_$t.log 2>&1 &
    done
    OMP_NUM_THREADS=1 timeout "$TRAIN_LIMIT" python3 -m monai_d2fad.protocol --config $CONFIG \
        --methods image_nn patchcore --output $RUNS/baselines > $RUNS/baselines.log 2>&1 &
    while [ "$(jobs -rp | grep -vc "^$SMI$")" -gt 0 ] && sleep 15; do
        echo "$(( $(date +%s) - start )) s: $(cat $RUNS/*.log | grep -c 'Metrics --') validations," \
            "$(cat $RUNS/*/results.csv 2>/dev/null | grep -c honest) rows"
    done
    echo "protocol processes done after $(( $(date +%s) - start )) s"
    kill $SMI
fi
has benchmark && timeout "$BENCH_LIMIT" python3 -m monai_d2fad.benchmark --config configs/benchmark/inference_gpu.json \
    --output "$OUT/benchmark_gpu.json" > $RUNS/benchmark.log 2>&1
has compiled && timeout "$COMPILE_LIMIT" python3 -m monai_d2fad.benchmark \
    --config configs/benchmark/inference_gpu_compiled.json --output "$OUT/benchmark_gpu_compiled.json" \
    > $RUNS/benchmark_compiled.log 2>&1
python3 - "$OUT/results_gpu.csv" <<'MERGE'
# every process's rows in one results.csv; the epochs-only runs' D2FAD is the selection ablation's variant
import csv, glob, sys
from monai_d2fad.protocol import COLUMNS
from monai_d2fad.protocol.variants import ABLATIONS, variant_name
epochs_only = variant_name(ABLATIONS["selection"]["epochs_only"])
with open(sys.argv[1], "w", newline="") as f:
    out = csv.DictWriter(f, COLUMNS)
    out.writeheader()
    for path in sorted(glob.glob("runs/gpu/*/results.csv")):
        for row in csv.DictReader(open(path, newline="")):
            if "/epochs_only_" in path and row["method"] == "D2FAD":
                row["method"] = epochs_only
            out.writerow(row)
MERGE
tail -n 5 $RUNS/*.log
tar czf "$OUT/gpu_runs.tgz" --exclude='*.pt' --exclude='*.pth' $RUNS
ls -la "$OUT"
