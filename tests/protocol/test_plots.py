"""Every figure of the protocol is written as a PNG."""

import torch

from monai_d2fad.protocol import plots


def test_figures_are_written(tmp_path):
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    scores = {"task_a": {"D2FAD": (torch.rand(6) + labels, labels), "PatchCore": (torch.rand(6), labels)}}
    images, maps = torch.rand(4, 3, 32, 32), torch.rand(4, 1, 32, 32)
    rows = [
        {
            "task": "task_a",
            "images": images,
            "maps": maps,
            "labels": [0, 0, 1, 1],
            "scores": [0.1] * 4,
            "map_range": (0.0, 1.0),
        }
    ]
    weights = [
        {
            "task": "task_a",
            "support": torch.rand(3, 3, 32, 32),
            "weights": torch.rand(4, 3).softmax(1),
            "labels": [0, 0, 1, 1],
        }
    ]
    auroc = {("D2FAD", "task_a", 2): [80.0, 90.0], ("D2FAD", "task_a", 4): [85.0], ("PatchCore", "task_a", 2): [70.0]}
    paths = [
        plots.auroc_by_shots(auroc, ["D2FAD", "PatchCore"], ["task_a"], str(tmp_path / "k.png")),
        plots.score_distributions(scores, str(tmp_path / "d.png")),
        plots.roc_curves(scores, str(tmp_path / "r.png")),
        plots.anomaly_map_grid(rows, str(tmp_path / "m.png")),
        plots.support_weight_plot(weights, str(tmp_path / "w.png")),
    ]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
