"""The two-student bundle configs (monai_d2fad/bundles/two_students): multi-class training, TensorBoard, resume,
evaluation, and a registered task that predicts."""

import json
import os

from monai_d2fad.checkpoint import load_model
from monai_d2fad.cli import main
from monai_d2fad.networks import TwoStudents
from monai_d2fad.protocol.training import training_scalars
from tests.bundles.conftest import SMALL


def test_multi_class_training_logs_resumes_evaluates_and_registers(tasks_dir, tmp_path):
    out = str(tmp_path / "run")
    common = ["--method", "two_students", "--output_dir", out, "--dataset_dir", tasks_dir]
    main(["train", *common, "--set", *SMALL, "epochs=1"])
    checkpoint = os.path.join(out, "models", "model.pt")
    model = load_model(checkpoint, teacher_weights=None)
    assert isinstance(model, TwoStudents) and model.config["dropout"] == 0.2
    scalars = training_scalars(out, ("decoder", "encoder", "loss", "val_auroc"))
    assert set(scalars) == {"decoder", "encoder", "loss", "val_auroc"}
    results = json.load(open(os.path.join(out, "test_results.json")))
    assert len(results["per_set"]) == 4  # multi-class: one model scores every task
    main(["train", *common, "--set", *SMALL, "epochs=2"])  # one more epoch: resumes from the first
    assert os.path.isfile(os.path.join(out, "models", "checkpoint_epoch=2.pt"))
    main(["evaluate", *common, "--set", *SMALL])
    assert json.load(open(os.path.join(out, "test_results.json")))["mean"]["auroc"] >= 0
    support = os.path.join(tasks_dir, "synthetic_rings", "train", "good")
    package = str(tmp_path / "rings.task.pt")
    main(["register", "--checkpoint", checkpoint, "--support", support, "--output", package, "--image_size", "32"])
    main(["predict", "--checkpoint", package, "--input", support, "--output", str(tmp_path / "pred")])
    summary = json.load(open(tmp_path / "pred" / "summary.json"))
    assert summary["scored"] == len(os.listdir(support))


def test_metadata_verifies_offline():
    from monai.bundle import verify_metadata

    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS, METHOD_CONFIGS

    schema = os.path.join(os.path.dirname(BUNDLE_CONFIGS), "docs", "meta_schema_20240725.json")
    verify_metadata(meta_file=os.path.join(METHOD_CONFIGS["two_students"], "metadata.json"), filepath=schema)
