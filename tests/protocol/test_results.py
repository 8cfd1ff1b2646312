"""Result tables and the D²4FAD variant names."""

import pytest

from monai_d2fad.protocol import ResultsFile, results_table
from monai_d2fad.protocol.results import COLUMNS
from monai_d2fad.protocol.variants import ABLATIONS, training_overrides, variant_name


def _row(method, task, shots, seed, auroc):
    fields = {"method": method, "test_task": task, "shots": shots, "seed": seed, "auroc": auroc}
    return {c: 0 for c in COLUMNS} | {"evaluation": "honest", "setting": "few-shot"} | fields


def test_table_gives_mean_and_std_in_percent_and_bolds_the_best():
    rows = [_row("A", "t", 2, 0, 0.90), _row("A", "t", 2, 1, 0.80), _row("B", "t", 2, 0, 0.70)]
    table = results_table(rows, ["A", "B"], ["t"], [2, 4])
    lines = table.splitlines()
    assert lines[0] == "| method | t 2-shot | t 4-shot | mean |"
    assert lines[2] == "| A | **85.0 ± 5.0** | – | – |"
    assert lines[3] == "| B | 70.0 ± 0.0 | – | – |"


def test_results_file_appends_and_remembers_done_cells(tmp_path):
    path = str(tmp_path / "results.csv")
    results = ResultsFile(path)
    results.add([_row("A", "t", 2, 0, 0.5)])
    again = ResultsFile(path)
    assert again.done("A", "t", 2, 0) and not again.done("A", "t", 2, 1)
    assert not again.done("A", "t", 2, 0, "official")
    assert again.rows[0]["auroc"] == "0.5"


def test_results_file_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("method,auroc\nA,0.5\n")
    with pytest.raises(ValueError, match="columns"):
        ResultsFile(str(path))


def test_variant_names_list_only_what_differs_from_the_defaults():
    assert variant_name({}) == "D2FAD"
    assert variant_name({"lam": 100.0}) == "D2FAD" and variant_name({"lam": 1.0}) == "D2FAD[lam=1.0]"
    assert variant_name({"student_output": "linear"}, {"teacher": "efficientnet_lite0"}) == "D2FAD"
    assert variant_name({"student_output": "relu"}, {"teacher": "efficientnet_lite0"}) == "D2FAD[student_output=relu]"
    assert variant_name({"ssd": False, "l2w": "none"}) == "D2FAD[l2w=none,ssd=False]"
    assert variant_name({"teacher": "resnet18"}, {"teacher": "resnet18"}) == "D2FAD"
    assert training_overrides({"image_score": "max", "lam": 0.5}) == {"lam": 0.5}


def test_table2_ablation_has_the_papers_five_rows_with_the_full_model_last():
    rows = ABLATIONS["table2"]
    assert list(rows) == ["tsd", "ssd", "ssd+tsd", "ssd+l2w", "ssd+tsd+l2w"]
    assert variant_name(rows["ssd+tsd+l2w"]) == "D2FAD"


def test_results_file_without_setting_column_is_upgraded_keeping_every_row(tmp_path):
    from monai_d2fad.protocol.results import COLUMNS_V1

    path = tmp_path / "results.csv"
    old = [_row("D2FAD", "t", 2, 0, 0.7), _row("ImageNN", "t", 2, 0, 0.8)]
    lines = [",".join(COLUMNS_V1)] + [",".join(str(r[c]) for c in COLUMNS_V1) for r in old]
    path.write_text("\n".join(lines) + "\n")
    results = ResultsFile(str(path))
    assert [(r["method"], r["setting"], r["auroc"]) for r in results.rows] == [
        ("D2FAD", "cross-task", "0.7"),
        ("ImageNN", "few-shot", "0.8"),
    ]
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)  # rewritten with the column, rows kept
    assert len(ResultsFile(str(path)).rows) == 2
