"""The bundle as the model zoo's CI checks it: metadata, training workflow, resume, evaluation, inference, export."""

import csv
import json
import logging
import os
import subprocess
import sys

import nibabel as nib
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata
from monai.metrics import compute_roc_auc
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import make_synthetic_tasks
from monai_d2fad.protocol.training import initial_network, training_scalars

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = BUNDLE_CONFIGS  # the package data; bundles/ of the checkout links to it
BUNDLE = os.path.dirname(CONFIGS)
TRAIN = [os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "demo.json")]
SMALL = {"image_size": 32, "batch_size": 4, "num_workers": 0}


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tasks"))
    make_synthetic_tasks(root, n_train=6, n_val=3, n_test=4, size=32)
    return root


def _workflow(config_file, workflow_type="train", **overrides):
    wf = ConfigWorkflow(
        config_file=config_file,
        workflow_type=workflow_type,
        logging_file=os.path.join(CONFIGS, "logging.conf"),
        **overrides,
    )
    wf.initialize()
    return wf


def test_metadata_verifies_offline(tmp_path):
    schema = os.path.join(BUNDLE, "docs", "meta_schema_20240725.json")
    verify_metadata(meta_file=os.path.join(CONFIGS, "metadata.json"), filepath=schema)


def test_bundle_files():
    for name in [
        "LICENSE",
        "models/model.pt",
        "sample_data/support/normal_0.png",
        "docs/README.md",
        "docs/training_curves.png",
        "configs/logging.conf",
        "configs/evaluate.json",
        "configs/inference.json",
        "configs/multi_gpu_train.json",
    ]:
        assert os.path.isfile(os.path.join(BUNDLE, name)), name


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_train_resume_evaluate_infer(tmp_path, tasks_dir):
    out = str(tmp_path / "out")
    wf = _workflow(TRAIN, output_dir=out, dataset_dir=tasks_dir, epochs=1, **SMALL)
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    models = os.path.join(out, "models")
    assert {"checkpoint_epoch=1.pt", "model.pt", "model_final.pt"} <= set(os.listdir(models))
    events = [f for f in os.listdir(os.path.join(out, "tensorboard")) if f.startswith("events.out.tfevents")]
    assert len(events) == 1  # one writer for the run
    per_task = [f"val_{m}/{t}" for m in ("auroc", "aupr", "f1_max") for t in ("synthetic_checker", "synthetic_rings")]
    tags = ("loss", "tsd", "ssd", "lr", "val_auroc", *per_task)
    logged = training_scalars(out, tags)  # every iteration's terms, by handler; each training task's val metrics
    assert set(logged) == set(tags) and len(logged["tsd"]) == len(logged["loss"]) > 1
    accumulator = EventAccumulator(os.path.join(out, "tensorboard", events[0]))
    accumulator.Reload()
    assert set(accumulator.Tags()["images"]) == {"train/episode", "val/heatmaps"}
    results = json.load(open(os.path.join(out, "test_results.json")))
    assert 0.0 <= results["mean"]["auroc"] <= 1.0 and len(results["per_set"]) == 2  # demo: 2 support seeds

    # the same command with more epochs continues from epoch 1: only epoch 2 runs
    wf = _workflow(TRAIN, output_dir=out, dataset_dir=tasks_dir, epochs=2, **SMALL)
    records = _Records()  # the bundle's logging.conf replaces the root handlers, pytest's capture included
    logging.getLogger("monai_d2fad.engines.trainer").addHandler(records)
    iterations = []
    wf.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: iterations.append(e.state.iteration))
    wf.run()
    wf.finalize()
    logging.getLogger("monai_d2fad.engines.trainer").removeHandler(records)
    assert any("resuming from" in m and "checkpoint_epoch=1.pt" in m for m in records.messages)
    assert len(iterations) == len(wf.trainer.data_loader) and wf.trainer.state.epoch == 2
    trainer_state = torch.load(os.path.join(models, "checkpoint_epoch=2.pt"), weights_only=True)["trainer"]
    assert trainer_state["iteration"] == 2 * trainer_state["epoch_length"]

    # evaluation of the best checkpoint: teacher and image size come from it (train.json alone names WRN50-2, 128 px)
    os.remove(os.path.join(out, "test_results.json"))
    wf = _workflow(
        [TRAIN[0], os.path.join(CONFIGS, "evaluate.json")],
        workflow_type=None,
        run_id="evaluating",
        output_dir=out,
        dataset_dir=tasks_dir,
        test_task="synthetic_cells",
        shots=2,
        support_seeds=2,
        num_workers=0,
    )
    wf.run()
    results = json.load(open(os.path.join(out, "test_results.json")))
    seed0 = results["per_set"]["synthetic_cells/2-shot/seed0"]["auroc"]

    # inference.json on the test folder with the same supports gives the same AUROC; the image size is the checkpoint's
    test_dir = os.path.join(tasks_dir, "synthetic_cells", "test")
    support = os.path.join(out, "support_lists", "synthetic_cells", "2-shot_seed0.txt")
    infer = dict(ckpt_path=os.path.join(models, "model.pt"), dataset_dir=test_dir, support=support)
    wf = _workflow(os.path.join(CONFIGS, "inference.json"), "infer", output_dir=str(tmp_path / "infer"), **infer)
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    rows = list(csv.DictReader(open(tmp_path / "infer" / "scores.csv")))
    assert list(rows[0]) == ["path", "slice", "score", "anomalous", "threshold", "heatmap"] and len(rows) == 8
    scores = torch.tensor([float(r["score"]) for r in rows])
    labels = torch.tensor([int("/anomaly/" in r["path"]) for r in rows])
    assert float(compute_roc_auc(scores, labels)) == pytest.approx(seed0, abs=1e-6)
    threshold = float(rows[0]["threshold"])
    assert all(int(r["anomalous"]) == (float(r["score"]) >= threshold * (1 - 1e-5)) for r in rows)
    assert all(os.path.isfile(tmp_path / "infer" / r["heatmap"]) and r["heatmap"].endswith(".png") for r in rows)
    nifti = dict(output_dir=str(tmp_path / "nifti"), map_format="nifti")
    wf = _workflow(os.path.join(CONFIGS, "inference.json"), "infer", **nifti, **infer)
    wf.run()
    wf.finalize()
    first = next(csv.DictReader(open(tmp_path / "nifti" / "scores.csv")))
    assert nib.load(tmp_path / "nifti" / first["heatmap"]).shape == (32, 32)  # the raw map at the model's size

    # TorchScript export the model zoo's way (scripting) with the supports baked in and the task's settings attached
    ts_file = str(tmp_path / "model.ts")
    ckpt_export(
        net_id="network_def",
        filepath=ts_file,
        ckpt_file=os.path.join(models, "model.pt"),
        meta_file=os.path.join(CONFIGS, "metadata.json"),
        config_file=os.path.join(CONFIGS, "inference.json"),
        **infer,
    )
    exported = torch.jit.load(ts_file)
    assert (exported.image_size, exported.modality) == (32, "") and exported.threshold == pytest.approx(threshold)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(exported(x), wf.network_def(x), atol=1e-5)


def test_validation_before_training_makes_the_initial_network_a_candidate(tmp_path, tasks_dir):
    out = str(tmp_path / "out")
    settings = dict(output_dir=out, dataset_dir=tasks_dir, epochs=1, **SMALL)
    wf = _workflow(TRAIN, **settings)
    wf.run()
    val = dict(training_scalars(out, ("val_auroc",))["val_auroc"])
    assert sorted(val) == [0, 1]  # validated as initialised, then after the epoch
    models = os.path.join(out, "models")
    kept = load_checkpoint(os.path.join(models, "model.pt")).student.state_dict()
    initial = initial_network({**settings, "teacher": "efficientnet_lite0", "seed": 0})  # demo.json's
    final = load_checkpoint(os.path.join(models, "model_final.pt")).student.state_dict()
    expected = initial.student.state_dict() if val[1] <= val[0] else final  # a later epoch must beat the start
    assert all(torch.equal(kept[k], expected[k]) for k in kept)
    assert not all(torch.equal(final[k], initial.student.state_dict()[k]) for k in final)  # training moved it


def test_lr_schedule_and_early_stopping_options(tmp_path, tasks_dir):
    wf = _workflow(
        TRAIN,
        output_dir=str(tmp_path / "out"),
        dataset_dir=tasks_dir,
        epochs=3,
        lr_schedule=True,
        early_stop_patience=1,
        **SMALL,
    )
    lrs = []
    wf.trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: lrs.append(e.optimizer.param_groups[0]["lr"]))
    wf.run()
    assert lrs[0] < 1e-3  # cosine schedule stepped after the first epoch
    stopper = wf.parser.get_parsed_content("validate#early_stop")
    validator = wf.parser.get_parsed_content("validate#evaluator")
    assert stopper._handler.trainer is wf.trainer and validator.has_event_handler(stopper, Events.EPOCH_COMPLETED)


def test_multi_gpu_config_runs_ddp_with_two_cpu_processes(tmp_path, tasks_dir):
    out = str(tmp_path / "ddp")
    configs = [*TRAIN, os.path.join(CONFIGS, "multi_gpu_train.json")]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        str(configs),
        "--output_dir",
        out,
        "--dataset_dir",
        tasks_dir,
        "--epochs",
        "1",
        "--image_size",
        "32",
        "--batch_size",
        "4",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert {"checkpoint_epoch=1.pt", "model.pt", "model_final.pt"} <= set(os.listdir(os.path.join(out, "models")))
    assert os.path.isfile(os.path.join(out, "test_results.json"))
    assert len(os.listdir(os.path.join(out, "tensorboard"))) == 1  # rank 0 alone logs
    # per-task validation metrics of the sharded validation reach TensorBoard: before training and after epoch 1
    logged = training_scalars(out, ("val_auroc/synthetic_checker",))["val_auroc/synthetic_checker"]
    assert [step for step, _ in logged] == [0, 1]


def test_inference_keeps_an_existing_scores_file(tmp_path, checkpoint_file, references):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.csv").write_text("mine")
    settings = dict(output_dir=str(out), ckpt_path=checkpoint_file, support=references, dataset_dir=references)
    with pytest.raises(RuntimeError) as err:  # MONAI reports a failed config expression with its cause
        _workflow(os.path.join(CONFIGS, "inference.json"), workflow_type="infer", image_size=64, **settings)
    assert "scores.csv already exists; set --overwrite true" in str(err.value.__cause__)
    assert (out / "scores.csv").read_text() == "mine"
    wf = _workflow(os.path.join(CONFIGS, "inference.json"), "infer", image_size=64, overwrite=True, **settings)
    wf.run()
    wf.finalize()
    assert len(list(csv.reader(open(out / "scores.csv")))) == 4 and not (out / ".monai_d2fad.lock").exists()


def test_evaluation_of_an_unreadable_checkpoint_names_it(tmp_path, tasks_dir):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    wf = _workflow(
        [*TRAIN, os.path.join(CONFIGS, "evaluate.json")],
        workflow_type=None,
        run_id="evaluating",
        output_dir=str(tmp_path / "out"),
        dataset_dir=tasks_dir,
        ckpt_path=str(bad),
        **SMALL,
    )
    with pytest.raises(RuntimeError) as err:
        wf.run()
    assert f"{bad} is not a readable checkpoint" in str(err.value.__cause__)
