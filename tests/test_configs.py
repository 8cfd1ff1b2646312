"""``configs/``: each experiment config gives the settings of the command documented for it, and bad keys are named."""

import argparse
import dataclasses
import glob
import json
import os

import pytest
import torch

from monai_d2fad import benchmark, training_benchmark
from monai_d2fad.options import add_config_option, apply_config
from monai_d2fad.protocol import __main__ as protocol_cli
from monai_d2fad.protocol.config import ProtocolConfig

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


def _parse(add_arguments, argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    add_config_option(parser)
    apply_config(parser, argv)
    return parser.parse_args(argv)


def _protocol(argv):
    args = _parse(protocol_cli.add_arguments, argv)
    return dataclasses.asdict(
        ProtocolConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ProtocolConfig)})
    )


@pytest.mark.parametrize(
    "name, documented",
    [
        (
            "medfsad_lite0_cpu",  # docs/RESULTS.md, "Command and run time" (128 px)
            "--data_dir ../shared/data/medfsad --output runs/medfsad --shots 2 4 8 --seeds 5 --epochs 4 "
            "--train_shots 4 --teacher efficientnet_lite0 --image_size 128 --methods d2fad,d2fad_global,patchcore,"
            "rd4ad,image_nn,dcam,two_students,pdd --evaluation honest official --dcam_steps 100 --dcam_epochs 4 "
            "--two_students_steps 100 --two_students_epochs 4 --pdd_steps 100 --pdd_epochs 4",
        ),
        (
            "medfsad_lite0_cpu_224",  # docs/RESULTS.md, "Lite0 at 224 px (the previous headline)"
            "--data_dir ../shared/data/medfsad --output runs/medfsad_224 --shots 2 4 8 --seeds 5 --epochs 2 "
            "--train_shots 4 --teacher efficientnet_lite0 --image_size 224 "
            "--methods d2fad d2fad_global patchcore rd4ad image_nn --evaluation honest official",
        ),
        (
            "medfsad_lite2_cpu_256",  # docs/RESULTS.md, "Headline: EfficientNet-Lite2 at 256 px"
            "--data_dir ../shared/data/medfsad --output runs/medfsad_lite2_256 --shots 2 4 8 --seeds 5 --epochs 2 "
            "--train_shots 4 --teacher efficientnet_lite2 --image_size 256 "
            "--methods d2fad d2fad_global patchcore rd4ad image_nn --evaluation honest official",
        ),
    ],
)
def test_the_results_run_configs_are_the_documented_commands(name, documented):
    config = os.path.join(CONFIGS, "protocol", f"{name}.json")
    assert _protocol(["--config", config]) == _protocol(documented.split())
    assert _protocol(["--config", config, "--seeds", "2"])["seeds"] == 2  # the command line overrides the file


@pytest.mark.parametrize(
    "name, module, documented",
    [
        ("inference_cpu", benchmark, "--device cpu --output docs/benchmark_cpu.json"),
        (
            "training_lite0_cpu",
            training_benchmark,
            "--data_dir ../shared/data/medfsad --teacher efficientnet_lite0 --image_size 128 --shots 4 --steps 20 "
            "--max_per_task 100 --output docs/benchmark_training_cpu.json",
        ),
        (
            "training_wrn50_2_cpu",
            training_benchmark,
            "--data_dir ../shared/data/medfsad --teacher wide_resnet50_2 --image_size 128 --shots 4 --steps 5 "
            "--max_per_task 100 --output docs/benchmark_training_cpu_wrn50_2.json",
        ),
    ],
)
def test_benchmark_configs_are_the_documented_commands(name, module, documented):
    from_file = vars(_parse(module.add_arguments, ["--config", os.path.join(CONFIGS, "benchmark", f"{name}.json")]))
    from_flags = vars(_parse(module.add_arguments, documented.split()))
    assert {k: v for k, v in from_file.items() if k != "config"} == {
        k: v for k, v in from_flags.items() if k != "config"
    }


def test_val_choices_config_lists_the_rows_of_the_results_table():
    with open(os.path.join(CONFIGS, "val_choices", "training_defaults.json")) as f:
        rows = json.load(f)
    assert [(r["output"], r["lr"], r["lam"], r["sim"], r.get("detach", False)) for r in rows] == [
        ("relu", 1e-4, 0.1, "dot", False),
        ("linear", 1e-4, 0.1, "dot", False),
        ("linear", 1e-3, 0.1, "dot", False),
        ("linear", 1e-3, 1.0, "dot", False),
        ("linear", 1e-3, 1.0, "cosine", False),
        ("linear", 1e-3, 1.0, "cosine", True),
        ("linear", 1e-3, 10.0, "cosine", False),
        ("linear", 1e-3, 30.0, "cosine", False),
        ("linear", 1e-3, 100.0, "cosine", False),
    ]


def test_every_config_file_is_listed_in_the_configs_readme():
    readme = open(os.path.join(CONFIGS, "README.md")).read()
    files = glob.glob(os.path.join(CONFIGS, "*", "*.json"))
    assert files and all(os.path.relpath(f, CONFIGS) in readme for f in files)


def test_a_config_key_that_is_no_option_is_named(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data_dir": "x", "output": "y", "epoch": 3}))
    with pytest.raises(SystemExit):
        _parse(protocol_cli.add_arguments, ["--config", str(path)])
    assert "sets ['epoch'], which are not options" in capsys.readouterr().err


def _fine_tune(tmp_path, overlay: str, name: str, tasks: str, **overrides) -> dict:
    """A one-epoch ``fit`` with a ``configs/bundle`` overlay: the student's weights when training started."""
    from ignite.engine import Events
    from monai.bundle import ConfigParser

    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS

    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE_CONFIGS, "train.json"), os.path.join(CONFIGS, "bundle", overlay)])
    small = {"epochs": 1, "batch_size": 4, "max_train_per_task": 6, "shots": 2}  # at the shipped model's size
    parser.update({"dataset_dir": tasks, "output_dir": str(tmp_path / name), **small, **overrides})
    start = {}
    trainer = parser.get_parsed_content("train#trainer")
    student = parser.get_parsed_content("network_def").student
    trainer.add_event_handler(
        Events.STARTED, lambda e: start.update({k: v.clone() for k, v in student.state_dict().items()})
    )
    parser.get_parsed_content("fit")
    return start


def test_fine_tuning_configs_start_from_the_shipped_model(tmp_path):
    """``configs/bundle/finetune_*.json`` on a user's folder of tasks: training starts from the shipped weights (a
    run without ``initial_ckpt`` does not) and keeps the best model on the tasks' ``val``. The shipped student is
    the network as initialised (the training tasks' ``val`` kept it), so its loss need not start below a fresh
    student's."""
    from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
    from monai_d2fad.data import make_synthetic_tasks

    shipped = torch.load(os.path.join(os.path.dirname(BUNDLE_CONFIGS), "models", "model.pt"), weights_only=True)
    tasks = str(tmp_path / "my_tasks")
    make_synthetic_tasks(tasks, names=["synthetic_cells", "synthetic_rings"], n_train=6, n_val=3, n_test=3, size=128)
    start = _fine_tune(tmp_path, "finetune_own_tasks.json", "tuned", tasks)
    assert all(torch.equal(start[k], v) for k, v in shipped["student"].items())
    assert os.path.isfile(tmp_path / "tuned" / "models" / "model.pt")
    start = _fine_tune(tmp_path, "finetune_own_tasks.json", "fresh", tasks, initial_ckpt=None)
    assert not torch.equal(start["layer1.0.conv1.weight"], shipped["student"]["layer1.0.conv1.weight"])
    start = _fine_tune(tmp_path, "finetune_hold_out_one.json", "held", tasks, test_task="synthetic_rings")
    assert all(torch.equal(start[k], v) for k, v in shipped["student"].items())
