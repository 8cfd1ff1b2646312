import pytest
import torch

from monai_d2fad.losses import DCAMLoss, DualDistillationLoss
from monai_d2fad.networks.d2fad import D2FADOutput
from monai_d2fad.networks.dcam import DCAMOutput


def _output(query, teacher=None, support=None, k=3, aggregate="feature"):
    support = [q.unsqueeze(1).repeat(1, k, 1, 1, 1) for q in query] if support is None else support
    weights = [torch.full((q.shape[0], k), 1 / k) for q in query]
    return D2FADOutput(teacher or query, query, support, weights, aggregate)


def _feats(b=2):
    return [torch.rand(b, c, s, s) + 0.1 for c, s in [(8, 16), (16, 8), (32, 4)]]


@pytest.mark.parametrize("reduction", ["location", "flatten"])
@pytest.mark.parametrize("aggregate", ["feature", "distance"])
def test_identical_features_give_zero_loss(reduction, aggregate):
    out = DualDistillationLoss(lam=1.0, reduction=reduction).terms(_output(_feats(), aggregate=aggregate))
    for key in ("loss", "tsd", "ssd"):
        assert float(out[key]) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("reduction", ["location", "flatten"])
def test_different_features_give_positive_loss(reduction):
    query = _feats()
    out = DualDistillationLoss(lam=0.1, reduction=reduction).terms(
        _output(query, teacher=_feats(), support=[torch.rand(2, 3, *q.shape[1:]) for q in query])
    )
    assert float(out["tsd"]) > 0.01 and float(out["ssd"]) > 0.01
    assert float(out["loss"]) == pytest.approx(0.1 * float(out["tsd"]) + float(out["ssd"]), rel=1e-6)


def test_switches_and_lambda():
    query = _feats()
    out = _output(query, teacher=_feats(), support=[torch.rand(2, 3, *q.shape[1:]) for q in query])
    full = DualDistillationLoss(lam=0.5).terms(out)
    assert float(full["loss"]) == pytest.approx(0.5 * float(full["tsd"]) + float(full["ssd"]), rel=1e-6)
    assert float(DualDistillationLoss(tsd=False)(out)) == pytest.approx(float(full["ssd"]), rel=1e-6)
    only_tsd = DualDistillationLoss(ssd=False)
    assert float(only_tsd(out)) == pytest.approx(only_tsd.lam * float(full["tsd"]), rel=1e-6)
    with pytest.raises(ValueError):
        DualDistillationLoss(tsd=False, ssd=False)


def test_location_and_flatten_differ():
    """Per-location cosine (equations) and per-image flattened cosine (official code) are different losses."""
    query = _feats()
    out = _output(query, teacher=_feats())
    assert float(DualDistillationLoss(reduction="location").terms(out)["tsd"]) != pytest.approx(
        float(DualDistillationLoss(reduction="flatten").terms(out)["tsd"]), rel=1e-3
    )


def test_student_learns_its_signed_feature_teacher_with_the_bundle_defaults(tmp_path):
    """The teacher-student term must fall with Lite0 (signed features), ``DualDistillationLoss()`` and the optimiser
    of the bundle's train.json: with a ReLU-ended student at lr 1e-4 it stayed flat while ssd collapsed."""
    from monai.bundle import ConfigParser

    from monai_d2fad.data import EpisodeDataset, TeacherFeatureCache, discover_tasks, make_synthetic_tasks
    from monai_d2fad.networks import D2FAD
    from monai_d2fad.protocol.training import BUNDLE_TRAIN_CONFIG

    config = ConfigParser()
    config.read_config(BUNDLE_TRAIN_CONFIG)
    model = D2FAD(teacher="efficientnet_lite0", teacher_weights="imagenet")
    make_synthetic_tasks(str(tmp_path), size=64, n_train=12, n_test=2)
    tasks = list(discover_tasks(str(tmp_path)).values())
    episodes = EpisodeDataset(tasks, shots=2, image_size=64, teacher_features=TeacherFeatureCache(model.teacher))
    loader = torch.utils.data.DataLoader(episodes, batch_size=8, shuffle=True)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config["learning_rate"],
        betas=tuple(config["optimizer"]["betas"]),
    )
    loss_fn, tsd = DualDistillationLoss(), []
    model.train()
    for _ in range(10):
        for batch in loader:
            losses = loss_fn.terms(model(batch["query"], batch["support"]))
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
            tsd.append(float(losses["tsd"]))
    first, last = sum(tsd[:3]) / 3, sum(tsd[-3:]) / 3
    assert last < 0.6 * first, f"tsd {first:.3f} -> {last:.3f}"


def test_loss_terms_are_logged_and_zero_when_off():
    loss = DCAMLoss(cd="channel", kd="none")
    out = DCAMOutput([torch.randn(2, 4, 5, 5)], [torch.randn(2, 4, 5, 5)], [torch.randn(2, 4, 5, 5)])
    total = loss(out)
    assert set(loss.last_terms) == {"cd", "kd"} and loss.last_terms["kd"] == 0
    assert torch.isclose(total, loss.last_terms["cd"])
    with pytest.raises(ValueError, match="at least one"):
        DCAMLoss(cd="none", kd="none")


def test_identical_features_have_zero_loss():
    f = [torch.randn(2, 4, 5, 5)]
    loss = DCAMLoss(cd="channel", kd="spatial")
    assert loss(DCAMOutput(f, f, f)).abs() < 1e-5
