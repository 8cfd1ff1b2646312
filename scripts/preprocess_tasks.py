"""A copy of a task folder tree with every image already through its modality preset at the training size.

A machine that cannot hold the original images (the lent GPU machine takes 64 MiB of files) trains and scores on
this copy. Each image is read with its task's preset (intensity scaling, fundus crop, resize), stored as an 8-bit
file under the same relative path (JPEG for JPEG sources, PNG otherwise), and each ``meta.json`` names the
``generic`` preset, which reads such a file back unchanged up to 8-bit rounding and JPEG coding.

    python scripts/preprocess_tasks.py --data_dir ../shared/data/medfsad --output runs/medfsad128 --image_size 128
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from monai_d2fad.data.images import ReadImaged
from monai_d2fad.data.tasks import SPLITS, load_task, task_dirs

JPEG_QUALITY = 85  # about 4 kB an image at 128 px, 2 grey levels of mean error: the copy fits a 64 MiB transfer


def save_image(image: np.ndarray, path: str) -> None:
    """``image`` ``[3, S, S]`` in [0, 1] as an 8-bit file (grey when its channels agree), JPEG or PNG by suffix."""
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    grey = bool((pixels == pixels[..., :1]).all())
    picture = Image.fromarray(pixels[..., 0] if grey else pixels)
    jpeg = path.lower().endswith((".jpg", ".jpeg"))
    picture.save(path, **({"quality": JPEG_QUALITY} if jpeg else {}))


def preprocess_task(task_dir: str, output: str, image_size: int) -> int:
    """Write the preprocessed copy of one task; returns the number of images written."""
    task = load_task(task_dir)
    read = ReadImaged(image_size, task.modality)
    out_dir = os.path.join(output, os.path.basename(task_dir.rstrip(os.sep)))
    items = [item for split in SPLITS for item in task.items(split)]
    for item in tqdm(items, desc=task.name):
        target = os.path.join(out_dir, os.path.relpath(item["image"], task_dir))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        save_image(read({"image": item["image"]})["image"].numpy(), target)
    with open(os.path.join(task_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    meta.update(
        modality="generic",
        preprocessed={"source_modality": task.modality, "image_size": image_size, "jpeg_quality": JPEG_QUALITY},
    )
    with open(os.path.join(out_dir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    return len(items)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--output", required=True, help="new folder for the copy")
    p.add_argument("--image_size", type=int, default=128)
    args = p.parse_args()
    if os.path.exists(args.output):
        raise FileExistsError(f"{args.output} exists: choose a new folder")
    total = sum(preprocess_task(d, args.output, args.image_size) for d in task_dirs(args.data_dir).values())
    print(f"{total} images written under {args.output}")


if __name__ == "__main__":
    main()
