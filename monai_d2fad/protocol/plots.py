"""Figures of a protocol run (PNG, matplotlib): AUROC against K, score distributions, ROC curves, map overlays and
support weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from monai_d2fad.metrics import anomaly_metrics, roc_curve
from monai_d2fad.visualize import overlay, pyplot

__all__ = [
    "anomaly_map_grid",
    "auroc_by_shots",
    "roc_curves",
    "score_distributions",
    "support_weight_plot",
    "training_curves",
]

NORMAL, ABNORMAL = "#1f77b4", "#d62728"


def _image(x: torch.Tensor):
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    pyplot().close(fig)
    return path


def auroc_by_shots(
    values: Mapping[tuple[str, str, int], Sequence[float]], methods: Sequence[str], tasks: Sequence[str], path: str
) -> str:
    """One panel per task: each method's AUROC (%) against K, mean ± std over the reference draws.

    ``values[(method, task, K)]`` holds the AUROC of every draw, as ``results.cell_values`` gives it.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.2), squeeze=False, sharey=True)
    shots = sorted({k for _, _, k in values})
    for ax, task in zip(axes[0], tasks):
        ax.set_xscale("log", base=2)  # K = 2, 4, 8 evenly spaced
        for method in methods:
            cells = [(k, torch.tensor(values[(method, task, k)])) for k in shots if values.get((method, task, k))]
            if cells:
                mean = [float(v.mean()) for _, v in cells]
                std = [float(v.std(unbiased=False)) for _, v in cells]
                ax.errorbar([k for k, _ in cells], mean, yerr=std, marker="o", capsize=3, label=method)
        ax.axhline(50, color="grey", linestyle=":", linewidth=1)  # chance
        ax.set_xticks(shots, [str(k) for k in shots])
        ax.minorticks_off()
        ax.set(title=task, xlabel="K (normal references)")
    axes[0][0].set_ylabel("image AUROC (%)")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(fig, path)


def score_distributions(scores: Mapping[str, Mapping[str, tuple]], path: str) -> str:
    """One panel per task, a pair of violins (normal blue, abnormal red) with box plots per method (paper Fig. 2).

    ``scores[task][method] = (scores, labels)``. Each method's scores are min-max scaled within the task so that
    methods with different score units share one axis; the overlap of the pair is what matters.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(4.2 * len(scores), 3.6), squeeze=False)
    for ax, (task, by_method) in zip(axes[0], scores.items()):
        for i, (_method, (s, y)) in enumerate(by_method.items()):
            s, y = torch.as_tensor(s, dtype=torch.float64), torch.as_tensor(y)
            s = (s - s.min()) / max(float(s.max() - s.min()), 1e-12)
            for offset, label, colour in ((-0.18, 0, NORMAL), (0.18, 1, ABNORMAL)):
                values = s[y == label].numpy()
                parts = ax.violinplot([values], positions=[i + offset], widths=0.32, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colour)
                    body.set_alpha(0.45)
                ax.boxplot([values], positions=[i + offset], widths=0.1, showfliers=False)
        ax.set_xticks(range(len(by_method)), list(by_method), rotation=30, ha="right", fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.set_ylabel("anomaly score (scaled)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.45) for c in (NORMAL, ABNORMAL)]
    axes[0][-1].legend(handles, ["normal", "abnormal"], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(fig, path)


def roc_curves(scores: Mapping[str, Mapping[str, tuple]], path: str) -> str:
    """One panel per task with the ROC curve of each method; ``scores[task][method] = (scores, labels)``."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(3.6 * len(scores), 3.6), squeeze=False)
    for ax, (task, by_method) in zip(axes[0], scores.items()):
        for method, (s, y) in by_method.items():
            fpr, tpr = roc_curve(s, y)
            ax.plot(fpr.numpy(), tpr.numpy(), label=f"{method} ({100 * anomaly_metrics(s, y)['auroc']:.1f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(title=task, xlabel="false-positive rate", ylabel="true-positive rate", aspect="equal")
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def anomaly_map_grid(rows: Sequence[dict], path: str) -> str:
    """Overlays of anomaly maps, a row per task (paper Fig. 5).

    Each row is ``{"task", "images" [N, 3, H, W], "maps" [N, 1, H, W], "labels" [N], "scores" [N], "map_range"}``;
    every map of a row shares the row's ``map_range`` (one colour scale per dataset, not per image, so that a
    normal image does not light up).
    """
    plt = pyplot()
    cols = max(len(r["images"]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.1 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows):
        lo, hi = r["map_range"]
        blended = overlay(r["images"], r["maps"], vmin=lo, vmax=hi)
        for j, ax in enumerate(ax_row):
            ax.axis("off")
            if j >= len(blended):
                continue
            ax.imshow(_image(blended[j]))
            kind = "abnormal" if int(r["labels"][j]) else "normal"
            ax.set_title(
                f"{kind} {float(r['scores'][j]):.3g}", fontsize=8, color=ABNORMAL if kind == "abnormal" else NORMAL
            )
        ax_row[0].text(-0.08, 0.5, r["task"], transform=ax_row[0].transAxes, rotation=90, va="center", ha="right")
    return _save(fig, path)


def support_weight_plot(rows: Sequence[dict], path: str) -> str:
    """Learned weights of the K references per query (paper Fig. 6): the references, then the weight matrix.

    Each row is ``{"task", "support" [K, 3, H, W], "weights" [Q, K], "labels" [Q]}``.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, len(rows), figsize=(3.8 * len(rows), 5.2), squeeze=False, height_ratios=[1, 2.4])
    for j, r in enumerate(rows):
        strip = torch.cat(list(r["support"]), dim=-1)
        axes[0][j].imshow(_image(strip))
        axes[0][j].axis("off")
        axes[0][j].set_title(f"{r['task']}: K = {len(r['support'])} references", fontsize=9)
        weights = torch.as_tensor(r["weights"]).numpy()
        ax = axes[1][j]
        image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=max(float(weights.max()), 1e-6), aspect="auto")
        names = ["abnormal" if int(y) else "normal" for y in r["labels"]]
        ax.set_yticks(range(len(names)), [f"query {i} ({n})" for i, n in enumerate(names)], fontsize=7)
        ax.set_xticks(range(weights.shape[1]), [f"ref {k}" for k in range(weights.shape[1])], fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def training_curves(
    runs: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: str, legend_title: str = "held-out task"
) -> str:
    """Per trained model (a line each): the teacher-student loss ``tsd``, the self-distillation loss ``ssd`` (per
    iteration, smoothed over 20) and the validation AUROC of the training tasks (per epoch).

    ``runs[label][tag]`` holds ``(step, value)`` pairs of the TensorBoard scalars ``tsd``, ``ssd`` and ``val_auroc``.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, scalars in runs.items():
        for ax, tag in zip(axes, ("tsd", "ssd", "val_auroc")):
            steps, values = zip(*scalars[tag]) if scalars.get(tag) else ((), ())
            if tag != "val_auroc" and len(values) >= 20:
                smooth = torch.tensor(values).unfold(0, 20, 1).mean(1)
                steps, values = steps[19:], smooth.tolist()
            ax.plot(steps, [100 * v for v in values] if tag == "val_auroc" else values, label=label)
    titles = ("teacher-student loss (tsd)", "self-distillation loss (ssd)", "val AUROC (%) of the training tasks")
    for ax, title, xlabel in zip(axes, titles, ("iteration", "iteration", "epoch")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0].set_ylim(bottom=0)
    axes[2].legend(fontsize=7, title=legend_title, title_fontsize=7)
    return _save(fig, path)
