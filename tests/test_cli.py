"""``monai-d2fad <command>``: every command is listed, shows its defaults, and runs what its module runs."""

import json
import os
import subprocess
import sys

import pytest

import monai_d2fad
from monai_d2fad.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in COMMANDS)
    assert {"train", "evaluate", "register", "predict", "export", "protocol", "benchmark", "deploy"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "deploy"])
def test_each_command_shows_its_defaults(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "(default:" in capsys.readouterr().out


def test_register_then_predict(tmp_path, checkpoint_file, references):
    package = str(tmp_path / "task.pt")
    main(["register", "--checkpoint", checkpoint_file, "--support", references, "--output", package])
    summary = main(["predict", "--checkpoint", package, "--input", references, "--output", str(tmp_path / "out")])
    assert summary["scored"] == 3 and summary["image_size"] == 128 and summary["threshold"]["method"] == "loo"


def test_the_console_script_exits_0_when_a_command_succeeds(tmp_path, checkpoint_file, references):
    """The ``monai-d2fad`` script runs ``sys.exit(console())``: a command's return value (``register``'s path) must
    not become exit status 1; a failing command still exits non-zero."""
    package = str(tmp_path / "task.pt")
    script = "import sys; from monai_d2fad.cli import console; sys.exit(console())"
    argv = [sys.executable, "-c", script, "register", "--checkpoint", checkpoint_file, "--support", references]
    done = subprocess.run([*argv, "--output", package], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.path.isfile(package) and package not in done.stderr
    again = subprocess.run([*argv, "--output", package], capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "--overwrite" in again.stderr


def test_train_and_evaluate_with_the_demo_overlay(tmp_path):
    out = str(tmp_path / "run")
    small = ["--set", "epochs=1", "image_size=32", "support_seeds=1", "batch_size=4"]
    main(["train", "--output_dir", out, "--overlay", "demo", *small])
    assert os.path.isfile(os.path.join(out, "models", "model.pt"))
    os.remove(os.path.join(out, "test_results.json"))
    main(["evaluate", "--output_dir", out, "--overlay", "demo", *small])
    with open(os.path.join(out, "test_results.json")) as f:
        assert len(json.load(f)["per_set"]) == 1


def test_a_malformed_override_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--output_dir", "x", "--set", "epochs"])
    assert "--set takes key=value" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_entry_point():
    done = subprocess.run([sys.executable, "-m", "monai_d2fad", "--version"], capture_output=True, text=True)
    assert done.stdout.strip() == f"monai-d2fad {monai_d2fad.__version__}"
