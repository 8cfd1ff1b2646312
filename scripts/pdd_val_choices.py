"""PDD's few-shot settings compared on the tasks' ``val`` splits (never ``test``): each student and both, with the
map's mean as the image score (``--image_scores`` adds others), for one variant of the network and training.

Each task: ``--queries`` val images drawn once (seed 0), ``--draws`` sets of K normal references from ``train``,
fresh students trained ``--steps`` full-batch steps on each set. Prints the mean val AUROC (%) per task.

    python scripts/pdd_val_choices.py --variant '{"train": {"learning_rate": 0.005}}' --steps 200
    python scripts/pdd_val_choices.py --variant '{"net": {"global_teacher": null}}' --tasks chest_xray
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

import torch

from monai_d2fad.data import ImageDataset, discover_tasks
from monai_d2fad.losses import PDD_STUDENTS
from monai_d2fad.methods import PDDDetector, PDDTraining
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.networks import PDD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="../shared/data/medfsad")
    parser.add_argument("--variant", default="{}", help='JSON: {"net": PDD arguments, "train": PDDTraining fields}')
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--queries", type=int, default=160, help="val images per task")
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--image_scores", nargs="+", default=["mean"])
    parser.add_argument("--image_size", type=int, default=128)
    args = parser.parse_args()
    variant = json.loads(args.variant)
    model = PDD(**variant.get("net", {}))
    training = PDDTraining(**variant.get("train", {}))
    aurocs: dict[tuple[str, str], dict[str, list[float]]] = {}
    for name, task in sorted(discover_tasks(args.data_dir).items()):
        if args.tasks and name not in args.tasks:
            continue
        items = random.Random(0).sample(task.items("val"), min(args.queries, len(task.items("val"))))
        queries = ImageDataset(items, args.image_size, progress=False)
        images = torch.stack([queries[i]["image"] for i in range(len(queries))])
        labels = torch.tensor([item["label"] for item in items])
        normals = [item["image"] for item in task.normal("train")]
        for draw in range(args.draws):
            picked = random.Random(100 + draw).sample(normals, args.shots)
            references = ImageDataset([{"image": p} for p in picked], args.image_size, progress=False)
            support = torch.stack([references[i]["image"] for i in range(len(references))])
            fitter = PDDDetector(model, train_on_references=True, steps=args.steps, seed=draw, training=training)
            state = fitter.fit(support)
            with torch.inference_mode():
                encoded = fitter.encode(images)
                for students in PDD_STUDENTS:
                    for score in args.image_scores:
                        scores = PDDDetector(model, score, students).detect(encoded, state, images.shape[-2:]).scores
                        auroc = anomaly_metrics(scores, labels)["auroc"]
                        aurocs.setdefault((students, score), {}).setdefault(name, []).append(100 * auroc)
    for (students, score), by_task in aurocs.items():
        means = {t: statistics.mean(v) for t, v in by_task.items()}
        cells = ", ".join(f"{t} {m:.1f}" for t, m in means.items())
        print(f"{students} ({score}): {cells}; mean {statistics.mean(means.values()):.1f}")


if __name__ == "__main__":
    main()
