"""The official code's evaluation, reproduced as a diagnostic: batch-blurred maps, label-sorted batches, max."""

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from monai_d2fad.protocol.evaluation import official_scores


def test_official_scores_are_scipys_3d_blur_of_the_batch_then_the_max():
    raw = torch.rand(16, 1, 24, 24)
    # the per-image blur that the methods apply, here without borders to compare: a constant map per image
    constant = raw.mean((-2, -1), keepdim=True).expand(-1, -1, 24, 24)
    expected = gaussian_filter(constant[:, 0].numpy(), sigma=4).reshape(16, -1).max(1)
    assert np.allclose(official_scores(constant).numpy(), expected, atol=1e-6)


def test_an_official_score_depends_on_its_neighbours_in_the_batch():
    maps = torch.zeros(16, 1, 8, 8)
    alone = official_scores(maps)[3]
    maps[4:8] = 1.0  # other images of the batch become anomalous; image 3 is unchanged
    assert official_scores(maps)[3] > alone + 0.1
