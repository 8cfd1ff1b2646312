"""The PDD bundle configs (monai_d2fad/bundles/pdd): training on one task's normals, TensorBoard, resume, evaluation,
and a registered task that predicts."""

import json
import os

from monai_d2fad.checkpoint import load_model
from monai_d2fad.cli import main
from monai_d2fad.networks import PDD
from monai_d2fad.protocol.training import training_scalars
from tests.bundles.conftest import SMALL

TINY = [*SMALL, "global_teacher=resnet18", "dims=[8,16,32]"]


def test_single_task_training_logs_resumes_evaluates_and_registers(tasks_dir, tmp_path):
    out = str(tmp_path / "run")
    task = os.path.join(tasks_dir, "synthetic_rings")  # a task folder: one task's normals
    common = ["--method", "pdd", "--output_dir", out, "--dataset_dir", task]
    main(["train", *common, "--set", *TINY, "epochs=1"])
    checkpoint = os.path.join(out, "models", "model.pt")
    model = load_model(checkpoint, teacher_weights=None)
    assert isinstance(model, PDD) and model.config["global_teacher"] == "resnet18"
    assert model.config["global_teacher_weights"] is None  # random teachers follow teacher_weights=null
    scalars = training_scalars(out, ("student1", "student2", "mmu", "diversity", "loss", "val_auroc"))
    assert set(scalars) == {"student1", "student2", "mmu", "diversity", "loss", "val_auroc"}
    assert len(json.load(open(os.path.join(out, "test_results.json")))["per_set"]) == 1
    main(["train", *common, "--set", *TINY, "epochs=2"])  # one more epoch: resumes from the first
    assert os.path.isfile(os.path.join(out, "models", "checkpoint_epoch=2.pt"))
    main(["evaluate", *common, "--set", *TINY])
    assert json.load(open(os.path.join(out, "test_results.json")))["mean"]["auroc"] >= 0
    support = os.path.join(task, "train", "good")
    package = str(tmp_path / "rings.task.pt")
    main(["register", "--checkpoint", checkpoint, "--support", support, "--output", package, "--image_size", "32"])
    main(["predict", "--checkpoint", package, "--input", support, "--output", str(tmp_path / "pred")])
    assert json.load(open(tmp_path / "pred" / "summary.json"))["scored"] == len(os.listdir(support))


def test_metadata_verifies_offline():
    from monai.bundle import verify_metadata

    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS, METHOD_CONFIGS

    schema = os.path.join(os.path.dirname(BUNDLE_CONFIGS), "docs", "meta_schema_20240725.json")
    verify_metadata(meta_file=os.path.join(METHOD_CONFIGS["pdd"], "metadata.json"), filepath=schema)
