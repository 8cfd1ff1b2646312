"""DCAM's bundle configs (monai_d2fad/bundles/dcam): multi-class training, TensorBoard, resume, evaluation."""

import json
import os

from monai_d2fad.checkpoint import load_dcam
from monai_d2fad.cli import main
from monai_d2fad.networks import DCAM
from monai_d2fad.protocol.training import training_scalars
from tests.bundles.conftest import SMALL


def test_multi_class_training_logs_resumes_and_evaluates(tasks_dir, tmp_path):
    out = str(tmp_path / "run")
    common = ["--method", "dcam", "--output_dir", out, "--dataset_dir", tasks_dir]
    main(["train", *common, "--set", *SMALL, "epochs=1"])
    model = load_dcam(os.path.join(out, "models", "model.pt"), teacher_weights=None)
    assert isinstance(model, DCAM) and model.config["attention"] == "channel"
    scalars = training_scalars(out, ("cd", "kd", "loss", "val_auroc"))
    assert set(scalars) == {"cd", "kd", "loss", "val_auroc"}
    results = json.load(open(os.path.join(out, "test_results.json")))
    assert len(results["per_set"]) == 4  # multi-class: one model scores every task
    main(["train", *common, "--set", *SMALL, "epochs=2"])  # one more epoch: resumes from the first
    assert os.path.isfile(os.path.join(out, "models", "checkpoint_epoch=2.pt"))
    assert not os.path.isfile(os.path.join(out, "models", "checkpoint_epoch=1.pt"))  # n_saved=1: replaced
    main(["evaluate", *common, "--set", *SMALL])
    assert json.load(open(os.path.join(out, "test_results.json")))["mean"]["auroc"] >= 0


def test_single_task_training_uses_that_task_only(tasks_dir, tmp_path):
    out = str(tmp_path / "one")
    main(["train", "--method", "dcam", "--output_dir", out, "--dataset_dir", tasks_dir, "--set", *SMALL, "epochs=1",
          'train_tasks=["synthetic_rings"]'])  # fmt: skip
    results = json.load(open(os.path.join(out, "test_results.json")))
    assert list(results["per_set"]) == ["synthetic_rings/1-shot/seed0"]


def test_metadata_verifies_offline():
    from monai.bundle import verify_metadata

    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS, METHOD_CONFIGS

    schema = os.path.join(os.path.dirname(BUNDLE_CONFIGS), "docs", "meta_schema_20240725.json")
    verify_metadata(meta_file=os.path.join(METHOD_CONFIGS["dcam"], "metadata.json"), filepath=schema)
