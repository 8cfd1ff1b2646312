"""The protocol runner end to end on synthetic tasks: CSV schema, report, figures, resume, checkpoint mode."""

import csv
import glob
import json
import os
import pickle
import shutil

import pytest
import torch

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import make_synthetic_tasks
from monai_d2fad.data.tasks import discover_tasks
from monai_d2fad.protocol import COLUMNS, ProtocolConfig, ResultsFile, run_protocol
from monai_d2fad.protocol.__main__ import main
from monai_d2fad.protocol.cells import score_file
from monai_d2fad.protocol.report import write_report
from monai_d2fad.protocol.selection import GLOBAL_WEIGHTS
from monai_d2fad.protocol.training import initial_network

FAST = [
    "--shots", "2", "--seeds", "2", "--epochs", "1", "--teacher", "efficientnet_lite0",
    "--image_size", "64", "--max_train_per_task", "4", "--batch_size", "4", "--rd4ad_steps", "2", "--examples", "2",
]  # fmt: skip


def _rows(output):
    with open(os.path.join(output, "results.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_cli_runs_every_method_and_writes_csv_report_and_figures(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    main(["--data_dir", synthetic_dir, "--output", out, "--test_tasks", "synthetic_cells", *FAST])
    rows = _rows(out)
    assert tuple(rows[0]) == COLUMNS
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in ("D2FAD", "D2FAD+global", "PatchCore", "RD4AD", "ImageNN") for s in ("0", "1")
    )
    assert {r["evaluation"] for r in rows} == {"honest"}
    assert all(0.0 <= float(r[k]) <= 1.0 for r in rows for k in ("auroc", "aupr", "f1_max"))
    assert {r["n_normal"] for r in rows} == {"6"} and {r["n_abnormal"] for r in rows} == {"6"}
    assert {r["train_shots"] for r in rows if r["method"] in ("D2FAD", "D2FAD+global", "RD4AD")} == {"2"}
    weights = json.load(open(os.path.join(out, "global_weights.json")))["synthetic_cells/train_2-shot"]
    assert weights["weight"] in GLOBAL_WEIGHTS and len(weights["val_auroc"]) == len(GLOBAL_WEIGHTS)
    report = open(os.path.join(out, "results.md")).read()
    assert "synthetic_cells 2-shot" in report and "PatchCore" in report
    assert "D2FAD+global is this project's extension" in report
    figures = os.listdir(os.path.join(out, "figures"))
    for name in (
        "auroc_by_shots.png",
        "score_distributions_2shot.png",
        "roc_2shot.png",
        "maps_D2FAD_2shot.png",
        "support_weights_2shot.png",
    ):
        assert name in figures
    assert "maps_ImageNN_2shot.png" not in figures  # no maps: an image-level score
    # training chose its model on the training tasks' val splits; the held-out task was never a training task
    support_lists = os.listdir(os.path.join(out, "support_lists"))
    assert "synthetic_cells" in support_lists and len(support_lists) == 4


def _config(data_dir, output, **kw):
    base = dict(
        data_dir=data_dir, output=output, test_tasks=["synthetic_rings"], shots=[2], seeds=1, epochs=1,
        teacher="efficientnet_lite0", image_size=64, max_train_per_task=4, batch_size=4,
        rd4ad_steps=2, methods=["d2fad", "patchcore"], plots=False,
    )  # fmt: skip
    return ProtocolConfig(**{**base, **kw})


def test_rerun_keeps_finished_cells_and_adds_only_new_ones(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out))
    first = _rows(out)
    record = os.path.join(out, "models", "default", "synthetic_rings", "train_2-shot", "training.json")
    trained_at = os.path.getmtime(record)
    run_protocol(_config(synthetic_dir, out, seeds=2))
    second = _rows(out)
    assert second[: len(first)] == first  # finished cells untouched
    assert sorted((r["method"], r["seed"]) for r in second[len(first) :]) == [("D2FAD", "1"), ("PatchCore", "1")]
    assert os.path.getmtime(record) == trained_at  # the trained model was reused, not trained again
    run_protocol(_config(synthetic_dir, out, seeds=2))
    assert _rows(out) == second


def test_rerun_with_other_settings_is_refused(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, methods=["patchcore"]))
    with pytest.raises(ValueError, match=r"other settings.*epochs"):
        run_protocol(_config(synthetic_dir, out, methods=["patchcore"], epochs=3))


def test_resume_takes_the_data_dir_spelled_relative_to_another_folder(synthetic_dir, tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, methods=["patchcore"]))
    monkeypatch.chdir(os.path.dirname(synthetic_dir))
    run_protocol(_config(os.path.basename(synthetic_dir), out, methods=["patchcore"], seeds=2))
    assert [r["seed"] for r in _rows(out)] == ["0", "1"]


def test_train_shots_trains_one_model_for_every_k(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, shots=[2, 3], train_shots=2, methods=["d2fad"]))
    assert os.listdir(os.path.join(out, "models", "default", "synthetic_rings")) == ["train_2-shot"]
    assert {(r["shots"], r["train_shots"]) for r in _rows(out)} == {("2", "2"), ("3", "2")}


def test_checkpoint_is_evaluated_without_training(synthetic_dir, tmp_path, checkpoint_file):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, checkpoint=checkpoint_file, methods=["d2fad"]))
    assert not os.path.exists(os.path.join(out, "models"))
    assert [r["train_shots"] for r in _rows(out)] == ["checkpoint"]
    report = open(os.path.join(out, "results.md")).read()
    assert "the given checkpoint model.pt (not trained by this run)" in report and "epochs" not in report
    assert "extension" not in report  # no D2FAD+global rows: the header does not describe them


def test_ablation_trains_each_variant_and_reports_a_table(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, methods=["d2fad"], ablations=["image_score"]))
    methods = {r["method"] for r in _rows(out)}
    assert methods == {"D2FAD", "D2FAD[image_score=max]"}
    assert os.listdir(os.path.join(out, "models")) == ["default"]  # image score: same model, other scoring
    assert "## Ablation: image_score" in open(os.path.join(out, "results.md")).read()


def test_report_lists_only_the_variants_that_were_run(synthetic_dir, tmp_path):
    results = ResultsFile(str(tmp_path / "results.csv"))
    cell = {c: 0 for c in COLUMNS} | {"test_task": "synthetic_rings", "shots": 2, "seed": 0, "auroc": 0.5}
    cell["evaluation"] = "honest"
    results.add([cell | {"method": "D2FAD"}, cell | {"method": "D2FAD[l2w=none]"}])  # l2w=none is also ssd+tsd
    config = _config(synthetic_dir, str(tmp_path), shots=[2])
    report = open(write_report(config, results, discover_tasks(synthetic_dir))).read()
    l2w = report.split("## Ablation: l2w")[1]
    assert "| dot |" in l2w and "| none |" in l2w and "gaussian" not in l2w
    assert "| ssd+tsd |" in report.split("## Ablation: table2")[1] and "| tsd |" not in report


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"methods": ["magic"]}, "Unsupported option 'magic'"),
        ({"ablations": ["everything"]}, "Unsupported option 'everything'"),
        ({"shots": [0]}, "K >= 1"),
        ({"checkpoint": "missing.pt"}, "does not exist"),
    ],
)
def test_bad_settings_fail_before_any_work(synthetic_dir, tmp_path, kw, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        _config(synthetic_dir, str(tmp_path / "run"), **kw)


def test_unknown_test_task_names_the_tasks(synthetic_dir, tmp_path):
    with pytest.raises(ValueError, match="synthetic_cells"):
        run_protocol(_config(synthetic_dir, str(tmp_path / "run"), test_tasks=["liver_ct"]))


def test_official_evaluation_adds_rows_marked_official_beside_the_honest_ones(tmp_path):
    make_synthetic_tasks(str(tmp_path / "data"), names=["synthetic_cells", "synthetic_rings"], n_test=20, size=64)
    out = str(tmp_path / "run")
    config = _config(str(tmp_path / "data"), out, methods=["image_nn"], evaluations=["honest", "official"])
    run_protocol(config)
    rows = {r["evaluation"]: r for r in _rows(out)}
    assert set(rows) == {"honest", "official"}
    assert int(rows["honest"]["n_normal"]) + int(rows["honest"]["n_abnormal"]) == 40
    assert int(rows["official"]["n_normal"]) + int(rows["official"]["n_abnormal"]) == 32  # last batch dropped
    report = open(os.path.join(out, "results.md")).read()
    assert "official code's evaluation (biased" in report and "| ImageNN |" in report.split("biased")[1]
    run_protocol(config)
    assert len(_rows(out)) == 2


def test_an_unused_broken_task_does_not_stop_the_run(tmp_path):
    make_synthetic_tasks(str(tmp_path / "data"), names=["synthetic_cells", "synthetic_rings"], n_test=4, size=32)
    (tmp_path / "data" / "broken" / "train" / "good").mkdir(parents=True)  # no images
    config = _config(str(tmp_path / "data"), str(tmp_path / "run"), methods=["image_nn"])
    config.test_tasks, config.train_tasks = ["synthetic_cells"], ["synthetic_rings"]
    run_protocol(config)
    assert {r["test_task"] for r in _rows(str(tmp_path / "run"))} == {"synthetic_cells"}
    config.train_tasks = None  # now the broken task is a training task: refused before any work
    with pytest.raises(ValueError, match="broken"):
        run_protocol(config)


def test_a_missing_split_is_found_before_any_work(tmp_path):
    make_synthetic_tasks(str(tmp_path / "data"), names=["synthetic_cells", "synthetic_rings"], n_test=4, size=32)
    shutil.rmtree(tmp_path / "data" / "synthetic_rings" / "test")
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit, match=r"'synthetic_rings'.* has no 'test' split"):
        main(["--data_dir", str(tmp_path / "data"), "--output", out, "--methods", "image_nn", *FAST])
    assert not os.path.exists(os.path.join(out, "results.csv"))  # synthetic_cells was not run first


def test_a_tampered_score_file_is_refused_not_run(tmp_path):
    make_synthetic_tasks(str(tmp_path / "data"), names=["synthetic_cells", "synthetic_rings"], n_test=4, size=32)
    out, marker = str(tmp_path / "run"), tmp_path / "code_ran"
    config = _config(str(tmp_path / "data"), out, methods=["image_nn"], shots=[2])
    run_protocol(config)
    score = score_file(out, "ImageNN", "synthetic_rings", 2, 0)
    with open(score, "wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    config.plots = True
    with pytest.raises(ValueError, match="is not a score file of this project"):
        run_protocol(config)
    assert not marker.exists()


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_task_folder_named_like_an_expression_is_not_evaluated(tmp_path):
    name = "$__import__('pathlib').Path('code_ran').touch()"
    make_synthetic_tasks(str(tmp_path / "data"), names=["synthetic_cells", "synthetic_rings"], n_test=4, size=32)
    os.rename(tmp_path / "data" / "synthetic_rings", tmp_path / "data" / name)
    out = str(tmp_path / "run")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        main(["--data_dir", str(tmp_path / "data"), "--output", out, "--methods", "d2fad", "--test_tasks",
              "synthetic_cells", *FAST, "--no_plots"])  # fmt: skip
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "code_ran").exists()
    overrides = json.load(open(glob.glob(os.path.join(out, "models", "*", "*", "*", "training.json"))[0]))
    assert overrides["overrides"]["train_tasks"] == [name]


@pytest.mark.parametrize("key, method", [("dcam", "DCAM"), ("two_students", "TwoStudents")])
def test_student_methods_add_few_shot_full_shot_and_multi_class_rows(synthetic_dir, tmp_path, key, method):
    out = str(tmp_path / key)
    options = ["--methods", key, f"--{key}_steps", "2", f"--{key}_epochs", "1", f"--{key}_max_train_per_task", "4"]
    main(["--data_dir", synthetic_dir, "--output", out, "--test_tasks", "synthetic_cells", *FAST, *options])
    rows = _rows(out)
    assert sorted((r["method"], r["setting"], r["shots"], r["seed"]) for r in rows) == [
        (method, "few-shot", "2", "0"),
        (method, "few-shot", "2", "1"),
        (method, "full-shot", "0", "0"),
        (f"{method}-multi", "full-shot", "0", "0"),
    ]
    multi = json.load(open(os.path.join(out, "models", key, "multi-class", "training.json")))
    assert sorted(multi["overrides"]["train_tasks"]) == sorted(discover_tasks(synthetic_dir))  # every task
    single = json.load(open(os.path.join(out, "models", key, "full-shot", "synthetic_cells", "training.json")))
    assert single["overrides"]["train_tasks"] == ["synthetic_cells"]
    report = open(os.path.join(out, "results.md")).read()
    assert "## Full-shot" in report and f"| {method}-multi |" in report


def test_pdd_adds_few_shot_and_full_shot_rows(synthetic_dir, tmp_path):
    """PDD is a single-task method: no multi-class model."""
    out = str(tmp_path / "pdd")
    options = ["--methods", "pdd", "--pdd_steps", "2", "--pdd_epochs", "1", "--pdd_max_train_per_task", "4"]
    main(["--data_dir", synthetic_dir, "--output", out, "--test_tasks", "synthetic_cells", *FAST, *options])
    assert sorted((r["method"], r["setting"], r["shots"], r["seed"]) for r in _rows(out)) == [
        ("PDD", "few-shot", "2", "0"),
        ("PDD", "few-shot", "2", "1"),
        ("PDD", "full-shot", "0", "0"),
    ]
    assert sorted(os.listdir(os.path.join(out, "models", "pdd"))) == ["full-shot"]
    report = open(os.path.join(out, "results.md")).read()
    assert "| PDD |" in report and "full-shot students 1 epochs" in report


def test_full_shot_rows_stay_out_of_the_auroc_by_k_figure(tmp_path, monkeypatch):
    from monai_d2fad.protocol import figures

    seen = {}
    monkeypatch.setattr(figures.plots, "auroc_by_shots", lambda values, *args: seen.update(values) or "figure.png")
    config = ProtocolConfig(data_dir=str(tmp_path), output=str(tmp_path / "out"), shots=[2])
    row = {c: 0 for c in COLUMNS} | {"test_task": "t", "auroc": 0.5, "evaluation": "honest", "method": "DCAM"}
    rows = [row | {"shots": 2, "setting": "few-shot"}, row | {"shots": 0, "setting": "full-shot"}]
    figures.make_figures(config, {}, ["DCAM"], rows)
    assert set(seen) == {("DCAM", "t", 2)}


def test_untrained_ablation_scores_the_network_as_its_training_starts(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    config = _config(synthetic_dir, out, methods=["d2fad"], ablations=["untrained"])
    run_protocol(config)
    rows = {r["method"]: r for r in _rows(out)}
    assert set(rows) == {"D2FAD", "D2FAD[untrained=True]"}
    assert rows["D2FAD[untrained=True]"]["train_shots"] == "untrained"
    assert os.listdir(os.path.join(out, "models")) == ["default"]  # nothing trained for it
    models = os.path.join(out, "models", "default", "synthetic_rings", "train_2-shot", "models")
    trained = load_checkpoint(os.path.join(models, "model_final.pt"))  # the last epoch (model.pt may be the start)
    overrides = {"dataset_dir": synthetic_dir, "teacher": "efficientnet_lite0", "seed": 111}
    first, again = initial_network(overrides), initial_network(overrides)
    name, weight = next(iter(first.student.state_dict().items()))
    assert torch.equal(weight, again.student.state_dict()[name])  # seeded as the training run is
    assert not torch.equal(weight, trained.student.state_dict()[name])


def test_selection_ablation_trains_a_model_chosen_among_the_trained_epochs_only(synthetic_dir, tmp_path):
    out = str(tmp_path / "run")
    run_protocol(_config(synthetic_dir, out, methods=["d2fad"], ablations=["selection"], epochs=2))
    assert {r["method"] for r in _rows(out)} == {"D2FAD", "D2FAD[val_at_start=False]"}
    assert sorted(os.listdir(os.path.join(out, "models"))) == ["default", "val_at_start=False"]
    run_dir = os.path.join(out, "models", "val_at_start=False", "synthetic_rings", "train_2-shot")
    record = json.load(open(os.path.join(run_dir, "training.json")))
    assert record["overrides"]["val_at_start"] is False
    chosen = load_checkpoint(os.path.join(run_dir, "models", "model.pt"))
    start = initial_network({"dataset_dir": synthetic_dir, "teacher": "efficientnet_lite0", "seed": 111})
    name, weight = next(iter(start.student.state_dict().items()))
    assert not torch.equal(weight, chosen.student.state_dict()[name])  # a trained epoch, never the starting network
