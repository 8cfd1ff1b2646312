"""Score folders of images for anomalies with a trained model and a task's normal references.

    python -m monai_d2fad.predict --checkpoint model.pt --support normals/ --input scans/ --output results/
    python -m monai_d2fad.predict --checkpoint chest_xray.task.pt --input scans/ --output results/

``--checkpoint`` takes a checkpoint (then ``--support`` is needed) or a task package (references and threshold
included). Inputs: an image file, a folder (recursively; extension-less DICOM files too), a DICOM series folder
(one score per slice file) or a NIfTI/mha volume (one score per slice). Writes ``predictions.csv``,
``summary.json`` and heatmap overlays under ``heatmaps/``; existing outputs are kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time

import torch
from tqdm import tqdm

from monai_d2fad.data.images import ReadImaged, expand_slices
from monai_d2fad.data.tasks import list_images
from monai_d2fad.devices import PRECISIONS, autocast, default_device
from monai_d2fad.options import add_output_options, add_task_options, add_threshold_options, command_main
from monai_d2fad.outputs import OutputLockedError, check_overwrite, staged_outputs
from monai_d2fad.prediction_table import MAP_FORMATS, PredictionTable
from monai_d2fad.task_package import RegisteredTask, task_from_args
from monai_d2fad.transforms.io import ImageReadError
from monai_d2fad.visualize import THRESHOLD_SCALE

__all__ = ["PredictionDataset", "add_arguments", "main", "predict", "run"]

logger = logging.getLogger(__name__)
OUTPUTS = ("predictions.csv", "summary.json", "heatmaps")


class PredictionDataset(torch.utils.data.Dataset):
    """Items read on demand (nothing cached: memory stays bounded); unreadable files become error records."""

    def __init__(self, items: list[dict], modality: str | None, image_size: int):
        self.items, self.read = items, ReadImaged(image_size, modality, on_error="raise")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        try:
            return {**self.read(item), "index": index}
        except ImageReadError as e:
            return {"path": str(item["image"]), "slice": item.get("slice"), "error": str(e), "index": index}


def _collate(batch: list[dict]) -> dict:
    good = [b for b in batch if "error" not in b]
    return {
        "image": torch.stack([b["image"] for b in good]) if good else None,
        "path": [b["path"] for b in good],
        "slice": [b.get("slice") for b in good],
        "errors": [b for b in batch if "error" in b],
    }


def predict(
    package: RegisteredTask,
    input_path: str,
    output: str,
    batch_size: int = 16,
    num_workers: int = 0,
    precision: str = "fp32",
    channels_last: bool = True,
    compile: bool = False,
    overwrite: bool = False,
    heatmaps: bool = True,
    progress: bool = True,
    map_format: str = "png",
) -> dict:
    """Score every image under ``input_path``; returns the summary also written to ``summary.json``.

    ``output`` is locked for the run (``outputs.OutputLock``); the results are written to a staging folder inside it
    and moved into place at the end, replacing (with ``overwrite``) the whole of a previous run's outputs.
    """
    with staged_outputs(output, OUTPUTS, overwrite) as staging:
        items = expand_slices(list_images(input_path))
        detector, device = package.detector, package.detector.device
        if channels_last:
            detector.model.to(memory_format=torch.channels_last)  # conv weights; the 5-D support cache stays
        scorer = torch.compile(detector) if compile else detector
        loader = torch.utils.data.DataLoader(
            PredictionDataset(items, package.modality, package.image_size),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=_collate,
        )
        skipped, scored, anomalous, start = [], 0, 0, time.perf_counter()
        maps_as = map_format if heatmaps else "none"
        with PredictionTable(staging, input_path, package.threshold["value"], maps_as) as table:
            for batch in tqdm(loader, desc="scoring", unit="batch", disable=not progress):
                skipped += [{"path": e["path"], "slice": e["slice"], "reason": e["error"]} for e in batch["errors"]]
                if batch["image"] is None:
                    continue
                images = batch["image"].to(device)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode(), autocast(device, precision):
                    maps = scorer(images).float()
                judged = package.judge(images, maps, overlays=maps_as == "png")
                for i, (path, slice_index) in enumerate(zip(batch["path"], batch["slice"])):
                    score = float(judged.scores[i])
                    if not math.isfinite(score):  # e.g. an fp16 overflow: never call it normal
                        skipped.append({"path": path, "slice": slice_index, "reason": f"{path}: score is {score}"})
                        continue
                    is_anomalous = bool(judged.anomalous[i])
                    overlay = None if judged.overlays is None else judged.overlays[i]
                    table.add(path, slice_index, score, is_anomalous, overlay, judged.maps[i])
                    scored += 1
                    anomalous += int(is_anomalous)
        seconds = time.perf_counter() - start
        for s in skipped:
            logger.warning("skipped %s", s["reason"])
        summary = {
            "inputs": len(items),
            "scored": scored,
            "anomalous": anomalous,
            "normal": scored - anomalous,
            "skipped": len(skipped),
            "skipped_files": skipped,
            "threshold": package.threshold,
            "modality": package.modality,
            "image_size": package.image_size,
            "references": package.support_files,
            "heatmap_scale": THRESHOLD_SCALE,
            "device": str(device),
            "precision": precision,
            "seconds": round(seconds, 3),
            "images_per_second": round(scored / seconds, 2) if seconds > 0 else None,
        }
        with open(os.path.join(staging, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``predict``'s options."""
    add_task_options(p)
    add_threshold_options(p, default=None)
    p.add_argument("--input", required=True, help="image file, folder, DICOM series folder or NIfTI/mha volume")
    add_output_options(p, "folder for predictions.csv, summary.json and heatmaps/")
    p.add_argument("--batch_size", type=int, default=16, help="images scored together")
    p.add_argument("--num_workers", type=int, default=0, help="loader processes reading images")
    p.add_argument("--device", default=str(default_device()), help="cuda or cpu")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32", help="autocast on CUDA")
    p.add_argument("--no_channels_last", action="store_true", help="keep NCHW memory layout")
    p.add_argument("--compile", action="store_true", help="torch.compile the scoring network")
    p.add_argument("--no_heatmaps", action="store_true", help="write scores only")
    p.add_argument(
        "--map_format", choices=MAP_FORMATS, default="png", help="heatmaps as overlays (png) or raw maps (nifti)"
    )


def run(args: argparse.Namespace) -> dict:
    """Score ``args.input``; bad input ends the command with a message naming it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        check_overwrite([os.path.join(args.output, n) for n in OUTPUTS], args.overwrite)
        package = task_from_args(args)
        summary = predict(
            package,
            args.input,
            args.output,
            args.batch_size,
            args.num_workers,
            args.precision,
            not args.no_channels_last,
            args.compile,
            args.overwrite,
            not args.no_heatmaps,
            map_format=args.map_format,
        )
    except (FileExistsError, FileNotFoundError, ValueError, OutputLockedError) as e:
        raise SystemExit(f"error: {e}") from e
    print(
        f"scored {summary['scored']} of {summary['inputs']} images ({summary['anomalous']} anomalous at threshold "
        f"{summary['threshold']['value']:.6g}, {summary['threshold']['method']}); skipped {summary['skipped']}; "
        f"{summary['images_per_second']} images/s; results in {args.output}"
    )
    if summary["inputs"] and not summary["scored"]:
        raise SystemExit(f"error: none of the {summary['inputs']} inputs could be scored (see summary.json)")
    return summary


def main(argv: list[str] | None = None) -> dict:
    return command_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
