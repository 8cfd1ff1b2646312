import pytest

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import make_synthetic_tasks
from monai_d2fad.global_weight import main, with_global_weight
from monai_d2fad.protocol.selection import GLOBAL_WEIGHTS


@pytest.fixture
def tasks(tmp_path):
    root = str(tmp_path / "tasks")
    make_synthetic_tasks(root, names=["synthetic_cells", "synthetic_rings"], n_train=5, n_val=3, n_test=1, size=64)
    return root


def test_writes_a_checkpoint_that_scores_with_the_weight_of_the_best_val_auroc(tmp_path, checkpoint_file, tasks):
    output = str(tmp_path / "global.pt")
    args = ["--checkpoint", checkpoint_file, "--data_dir", tasks, "--shots", "2", "--image_size", "64"]
    assert main([*args, "--output", output]) == output
    chosen = load_checkpoint(output)
    lists = tmp_path / "support_lists"
    assert sorted(p.name for p in lists.iterdir()) == ["synthetic_cells", "synthetic_rings"]  # beside the output
    _, means = with_global_weight(
        load_checkpoint(checkpoint_file), tasks, None, 2, 1, str(lists), 64
    )  # the same lists: the same choice
    assert set(means) == set(GLOBAL_WEIGHTS)
    assert chosen.config["global_weight"] == max(GLOBAL_WEIGHTS, key=lambda w: (means[w], -w))
    assert load_checkpoint(checkpoint_file).config["global_weight"] == 0.0  # the input is left as it was
    with pytest.raises(SystemExit, match="--overwrite"):
        main([*args, "--output", output])


def test_an_unknown_task_is_named(tmp_path, checkpoint_file, tasks):
    with pytest.raises(SystemExit, match=r"no task \['liver'\]"):
        main(
            [
                "--checkpoint",
                checkpoint_file,
                "--data_dir",
                tasks,
                "--tasks",
                "liver",
                "--output",
                str(tmp_path / "g.pt"),
            ]
        )
