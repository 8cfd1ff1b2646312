import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader
from monai.handlers import ValidationHandler

from monai_d2fad.checkpoint import ModelCard, save_checkpoint
from monai_d2fad.data import (
    EpisodeDataset,
    EvaluationDataset,
    discover_tasks,
    evaluation_items,
    evaluation_sets,
    leave_one_task_out,
    make_synthetic_tasks,
)
from monai_d2fad.engines import EpisodicTrainer, FewShotEvaluator, resume_from_latest, scalar_output
from monai_d2fad.losses import DualDistillationLoss
from monai_d2fad.networks import D2FAD


def _setup(tmp_path):
    make_synthetic_tasks(
        str(tmp_path / "tasks"),
        names=["synthetic_stripes", "synthetic_rings", "synthetic_cells"],
        n_train=5,
        n_val=3,
        n_test=3,
        size=32,
    )
    train, test = leave_one_task_out(discover_tasks(str(tmp_path / "tasks")), "synthetic_cells")
    return train, test, D2FAD("resnet18", teacher_weights=None)


def test_trainer_logs_losses_redraws_episodes_and_freezes_teacher(tmp_path):
    train, _, net = _setup(tmp_path)
    episodes = EpisodeDataset(train, shots=2, seed=0, image_size=32)
    teacher_before = {k: v.clone() for k, v in net.teacher.state_dict().items()}
    params = [p for p in net.parameters() if p.requires_grad]
    trainer = EpisodicTrainer(
        "cpu", 2, DataLoader(episodes, batch_size=4), net, torch.optim.Adam(params, 1e-3), DualDistillationLoss()
    )
    epochs_seen = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs_seen.append(episodes.epoch))
    trainer.run()
    scalars = scalar_output(trainer.state.output)  # MONAI's loss, the handler's terms and learning rate
    assert set(scalars) == {"loss", "tsd", "ssd", "lr"} and all(isinstance(v, float) for v in scalars.values())
    assert scalars["loss"] == pytest.approx(100 * scalars["tsd"] + scalars["ssd"], rel=1e-5)  # lam = 100
    assert epochs_seen == [0, 1]
    assert all(torch.equal(v, net.teacher.state_dict()[k]) for k, v in teacher_before.items())


def test_evaluator_scores_every_image_per_set(tmp_path):
    _train, test, net = _setup(tmp_path)
    sets = evaluation_sets([test], "test", shots=2, seeds=2, support_dir=str(tmp_path / "lists"))
    dataset = EvaluationDataset(sets, image_size=32)
    assert len(dataset) == 6 and dataset.groups == {"synthetic_cells/test": [s.name for s in sets]}  # images once
    seen = []
    evaluator = FewShotEvaluator(
        "cpu", DataLoader(dataset, batch_size=5), net, sets, image_size=32, results_file=str(tmp_path / "results.json")
    )
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.extend(e.state.output["set"]))
    evaluator.run()
    assert len(seen) == 12  # each image scored against both sets; nothing dropped
    assert set(evaluator.results["per_set"]) == {s.name for s in sets}
    per_task = {f"{m}/synthetic_cells" for m in ("auroc", "aupr", "f1_max")}  # one task: its metrics are the means
    assert set(evaluator.state.metrics) == {"auroc", "aupr", "f1_max"} | per_task
    assert evaluator.state.metrics["auroc/synthetic_cells"] == pytest.approx(evaluator.state.metrics["auroc"])
    assert (tmp_path / "results.json").exists()


def test_evaluation_data_replaces_the_images_scored(tmp_path):
    """``validate#dataset#data`` (MONAI FL's key): a given datalist is what gets scored, each image in its group."""
    _train, test, _net = _setup(tmp_path)
    sets = evaluation_sets([test], "test", shots=2, seeds=1, support_dir=str(tmp_path / "lists"))
    items = evaluation_items(sets)
    assert len(items) == 6 and {item["group"] for item in items} == {"synthetic_cells/test"}
    subset = EvaluationDataset(sets, image_size=32, data=items[::2])
    assert [subset[i]["path"] for i in range(len(subset))] == [item["image"] for item in items[::2]]
    with pytest.raises(ValueError, match="group 'other/test' is none of"):
        EvaluationDataset(sets, image_size=32, data=[{**items[0], "group": "other/test"}])


def test_fine_tuning_starts_from_a_trained_model(tmp_path):
    """``initial_ckpt``: with no epoch checkpoint to resume from, training starts from a trained model's weights."""
    train, _, net = _setup(tmp_path)
    trained = D2FAD("resnet18", teacher_weights=None)
    trained.teacher.load_state_dict(net.teacher.state_dict())  # the same (random) teacher: its card must match
    key = next(iter(trained.student.state_dict()))
    trained.student.state_dict()[key].fill_(0.5)
    save_checkpoint(trained, tmp_path / "trained.pt")
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, 1e-3)
    trainer = EpisodicTrainer(
        "cpu", 1, DataLoader(EpisodeDataset(train, 2, 0, 32), batch_size=4), net, optimizer, DualDistillationLoss()
    )
    parts = {"d2fad": ModelCard(net), "student": net.student, "l2w": net.l2w, "optimizer": optimizer}
    empty = str(tmp_path / "models")
    used = resume_from_latest(trainer, empty, parts, initial_ckpt=str(tmp_path / "trained.pt"))
    assert used == str(tmp_path / "trained.pt")
    assert (net.student.state_dict()[key] == 0.5).all()


def test_validation_during_training_uses_training_tasks(tmp_path):
    train, _, net = _setup(tmp_path)
    sets = evaluation_sets(train, "val", shots=2, seeds=1, support_dir=str(tmp_path / "lists"))
    assert {s.task.name for s in sets} == {t.name for t in train}
    validator = FewShotEvaluator(
        "cpu", DataLoader(EvaluationDataset(sets, 32), batch_size=8), net, sets, 32, metric_prefix="val_"
    )
    params = [p for p in net.parameters() if p.requires_grad]
    trainer = EpisodicTrainer(
        "cpu",
        1,
        DataLoader(EpisodeDataset(train, 2, 0, 32), batch_size=4),
        net,
        torch.optim.Adam(params, 1e-3),
        DualDistillationLoss(),
        train_handlers=[ValidationHandler(1, validator)],
    )
    trainer.run()
    assert 0.0 <= validator.state.metrics["val_auroc"] <= 1.0


def test_training_through_the_trainer_makes_the_teacher_student_loss_fall(tmp_path):
    """MONAI's iteration with ``EpisodeBatch`` and the loss tensor really trains: tsd falls, not only runs."""
    train, _, net = _setup(tmp_path)
    params = [p for p in net.parameters() if p.requires_grad]
    trainer = EpisodicTrainer(
        "cpu",
        6,
        DataLoader(EpisodeDataset(train, shots=2, seed=0, image_size=32), batch_size=5, shuffle=True),
        net,
        torch.optim.Adam(params, 1e-3, betas=(0.5, 0.999)),
        DualDistillationLoss(),
    )
    tsd = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: tsd.append(e.state.output["tsd"]))
    trainer.run()
    first, last = sum(tsd[:3]) / 3, sum(tsd[-3:]) / 3
    assert last < 0.8 * first, f"tsd {first:.3f} -> {last:.3f}"
