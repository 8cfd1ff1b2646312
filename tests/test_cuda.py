"""The CUDA paths for real: autocast scoring, torch.compile, references kept on the GPU, AMP training. These run only
where a GPU is visible (issue 20's lent machine); the CPU suite skips them."""

import os

import pytest
import torch

from monai_d2fad.devices import autocast

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def detector_and_queries():
    from monai_d2fad.methods import D2FADDetector
    from monai_d2fad.networks import D2FAD

    model = D2FAD("efficientnet_lite0").cuda().eval()
    support = torch.rand(4, 3, 128, 128)  # on the CPU: set_support moves it to the model
    return D2FADDetector(model).set_support(support), torch.rand(8, 3, 128, 128, device="cuda")


def test_references_are_kept_on_the_gpu(detector_and_queries):
    detector, _ = detector_and_queries
    assert all(t.is_cuda for t in detector.references.features + detector.references.keys)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_maps_follow_fp32(detector_and_queries, precision):
    detector, queries = detector_and_queries
    with torch.inference_mode():
        reference = detector(queries).float()
        with autocast("cuda", precision):
            reduced = detector(queries).float()
    assert torch.isfinite(reduced).all()
    scores, scores_reduced = reference.flatten(1).mean(1), reduced.flatten(1).mean(1)
    assert torch.allclose(scores_reduced, scores, rtol=0.05, atol=0.02)
    assert torch.corrcoef(torch.stack([scores, scores_reduced]))[0, 1] > 0.99  # the same ranking, near enough


def test_compiled_scoring_matches_eager(detector_and_queries):
    detector, queries = detector_and_queries
    with torch.inference_mode():
        eager = detector(queries)
        compiled = torch.compile(detector)(queries)
    assert torch.allclose(compiled, eager, rtol=1e-3, atol=1e-4)


def test_amp_training_lowers_the_loss_on_the_gpu(tmp_path):
    """The bundle's demo training with AMP (train.json turns it on with CUDA): finite losses that fall."""
    from ignite.engine import Events
    from monai.bundle import ConfigParser

    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
    from monai_d2fad.engines import scalar_output

    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE_CONFIGS, n) for n in ("train.json", "demo.json")])
    parser.update({"output_dir": str(tmp_path), "epochs": 4, "support_seeds": 1})
    assert parser.get_parsed_content("amp") is True
    losses = []
    trainer = parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(scalar_output(e.state.output)))
    parser.get_parsed_content("fit")
    assert all(torch.isfinite(torch.tensor(loss["loss"])) for loss in losses)
    assert losses[-1]["tsd"] < losses[0]["tsd"]
