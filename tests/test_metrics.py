import pytest
import torch

from monai_d2fad.metrics import FewShotMetric, anomaly_metrics, best_f1_threshold


def test_perfect_and_inverted_ranking():
    perfect = anomaly_metrics([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert perfect == {"auroc": 1.0, "aupr": 1.0, "f1_max": 1.0}
    assert anomaly_metrics([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])["auroc"] == 0.0


def test_known_values_with_ties():
    # scores 0.4 tie between a normal and an anomalous image
    m = anomaly_metrics([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1])
    assert m["auroc"] == pytest.approx(0.875)
    assert m["aupr"] == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))
    assert m["f1_max"] == pytest.approx(0.8)


def test_single_class_is_an_error():
    with pytest.raises(ValueError, match="both normal"):
        anomaly_metrics([0.1, 0.2], [0, 0])


def test_metric_averages_over_sets():
    metric = FewShotMetric("auroc")
    metric.reset()
    metric.update((torch.tensor([0.1, 0.9, 0.2, 0.8]), torch.tensor([0, 1, 0, 1]), ["a", "a", "b", "b"]))
    metric.update((torch.tensor([0.95, 0.05]), torch.tensor([0, 1]), ["b", "b"]))
    value = metric.compute()
    assert metric.results["a"]["auroc"] == 1.0
    assert metric.results["b"]["auroc"] == pytest.approx(0.25)  # 1 of 4 (anomalous, normal) pairs ordered
    assert value == pytest.approx(0.625)


def test_best_f1_threshold():
    threshold, f1 = best_f1_threshold([0.1, 0.3, 0.35, 0.8, 0.9], [0, 0, 1, 1, 1])
    assert threshold == 0.35 and f1 == 1.0


def test_roc_curve_runs_from_origin_to_one_through_each_threshold():
    from monai_d2fad.metrics import roc_curve

    fpr, tpr = roc_curve([0.9, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert fpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert tpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]


def _shard(rank: int, init_file: str, results: dict) -> None:
    """One of two gloo processes: scores half of the pairs of ``test_metric_averages_over_sets``."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    metric = FewShotMetric("auroc", gather=True)
    metric.reset()
    shards = [
        (torch.tensor([0.1, 0.9, 0.2]), torch.tensor([0, 1, 0]), ["a", "a", "b"]),
        (torch.tensor([0.8, 0.95, 0.05]), torch.tensor([1, 0, 1]), ["b", "b", "b"]),
    ]
    metric.update(shards[rank])
    results[rank] = metric.compute()
    torch.distributed.destroy_process_group()


def test_metric_gathers_the_shards_of_a_distributed_evaluation(tmp_path):
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_shard, args=(str(tmp_path / "init"), results), nprocs=2)
    assert results[0] == results[1] == pytest.approx(0.625)  # as if one process had scored every pair
