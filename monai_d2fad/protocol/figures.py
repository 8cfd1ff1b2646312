"""The protocol's figures, from ``results.csv`` rows, the saved score files and the training logs."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import torch

from monai_d2fad.data.images import read_images
from monai_d2fad.data.tasks import Task
from monai_d2fad.protocol import plots
from monai_d2fad.protocol.cells import read_score_file, score_file
from monai_d2fad.protocol.config import BASELINES, GLOBAL_METHOD, ProtocolConfig, slug
from monai_d2fad.protocol.results import cell_values
from monai_d2fad.protocol.training import training_scalars

__all__ = ["make_figures"]


def make_figures(
    config: ProtocolConfig, tasks: dict[str, Task], methods: Sequence[str], rows: Sequence[dict]
) -> list[str]:
    """AUROC against K from the results ``rows``; then score distributions, ROC curves, map overlays and support
    weights at one K (4 if run), reference draw 0."""
    folder = os.path.join(config.output, "figures")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "auroc_by_shots.png")
    few_shot = [r for r in rows if r["setting"] != "full-shot"]  # full-shot rows have no K
    paths = [plots.auroc_by_shots(cell_values(few_shot), methods, list(tasks), path)]
    trained = {
        f"{t} ({os.path.basename(d)})": training_scalars(d)
        for t in tasks
        for d in sorted(glob.glob(os.path.join(config.output, "models", "default", t, "train_*")))
    }
    if any(trained.values()):
        paths.append(plots.training_curves(trained, os.path.join(folder, "training_curves.png")))
    k = 4 if 4 in config.shots else config.shots[0]
    records = {}
    for t in tasks:
        files = {m: score_file(config.output, m, t, k, 0) for m in methods}
        found = {m: read_score_file(f) for m, f in files.items() if os.path.isfile(f)}
        if found:
            records[t] = found
    if not records:
        return paths
    scores = {t: {m: (r["scores"], r["labels"]) for m, r in by_method.items()} for t, by_method in records.items()}
    paths += [
        plots.score_distributions(scores, os.path.join(folder, f"score_distributions_{k}shot.png")),
        plots.roc_curves(scores, os.path.join(folder, f"roc_{k}shot.png")),
    ]
    size = config.image_size
    # the image-level baseline has no maps; the global extension has D²4FAD's maps
    for m in (m for m in methods if m not in (BASELINES["image_nn"], GLOBAL_METHOD)):
        map_rows = [_map_row(t, r[m], tasks[t].modality, size) for t, r in records.items() if m in r]
        if map_rows:
            paths.append(plots.anomaly_map_grid(map_rows, os.path.join(folder, f"maps_{slug(m)}_{k}shot.png")))
    weights = [
        _weight_row(t, r["D2FAD"], tasks[t].modality, size)
        for t, r in records.items()
        if "D2FAD" in r and r["D2FAD"]["example_weights"]
    ]
    if weights:
        paths.append(plots.support_weight_plot(weights, os.path.join(folder, f"support_weights_{k}shot.png")))
    return paths


def _map_row(task: str, record: dict, modality: str, image_size: int) -> dict:
    return {
        "task": task,
        "images": read_images(record["examples"], modality, image_size),
        "maps": torch.stack(record["example_maps"]),
        "labels": record["example_labels"],
        "scores": record["example_scores"],
        "map_range": record["map_range"],
    }


def _weight_row(task: str, record: dict, modality: str, image_size: int) -> dict:
    support, weights = read_images(record["support"], modality, image_size), torch.stack(record["example_weights"])
    return {"task": task, "support": support, "weights": weights, "labels": record["example_labels"]}
