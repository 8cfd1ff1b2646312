"""The cells of one held-out task: which (method, K, seed) rows are missing, scoring them, their score files."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import torch

from monai_d2fad.data.evaluation import EvaluationSet, evaluation_sets
from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.tasks import Task, leave_one_task_out
from monai_d2fad.methods import Detector
from monai_d2fad.outputs import atomic_write
from monai_d2fad.protocol.config import GLOBAL_METHOD, ProtocolConfig, slug
from monai_d2fad.protocol.evaluation import SetScores, score_sets
from monai_d2fad.protocol.results import ResultsFile

__all__ = ["TaskCells", "read_score_file", "score_file"]

logger = logging.getLogger(__name__)


class TaskCells:
    """The cells of one held-out task: its test images (decoded once), reference sets and example images."""

    def __init__(self, config: ProtocolConfig, tasks: dict[str, Task], name: str, results: ResultsFile):
        self.config, self.results = config, results
        self.train_tasks, self.task = leave_one_task_out(tasks, name, config.train_tasks)
        self.support_dir = os.path.join(config.output, "support_lists")
        self.sets = evaluation_sets([self.task], "test", config.shots, config.seeds, self.support_dir)
        self._images: ImageDataset | None = None

    @property
    def images(self) -> ImageDataset:
        if self._images is None:
            self._images = ImageDataset(self.task.items("test"), self.config.image_size, self.task.modality)
        return self._images

    def examples(self) -> list[int]:
        """The first ``config.examples`` normal and abnormal test images (sorted by path), kept for figures."""
        items = self.task.items("test")
        order = sorted(range(len(items)), key=lambda i: items[i]["image"])
        normal = [i for i in order if items[i]["label"] == 0][: self.config.examples]
        abnormal = [i for i in order if items[i]["label"] == 1][: self.config.examples]
        return normal + abnormal

    def pending(self, method: str, shots: Sequence[int]) -> list[EvaluationSet]:
        """The sets of ``shots`` that miss a row of ``method`` for one of the configured evaluations."""
        return [
            s
            for s in self.sets
            if _shots(s) in shots
            and not all(
                self.results.done(method, self.task.name, _shots(s), _seed(s), e)
                for e in _evaluations(self.config, method)
            )
        ]

    def full_shot_set(self) -> EvaluationSet:
        """The test split scored by a model trained on the task's ``train/good``: no references (``shots`` 0)."""
        return EvaluationSet(f"{self.task.name}/test/full-shot/seed0", self.task, [], "test")

    def evaluate(
        self,
        name: str,
        method: Detector,
        sets: list[EvaluationSet],
        train_shots: dict[int, int | str],
        train_seconds: float = 0.0,
        setting: str = "few-shot",
    ) -> None:
        """Score ``sets``, save each set's scores for the figures, append the rows.

        ``train_shots`` gives, per test K, the K the scoring model was trained with (none for training-free methods);
        ``setting`` what the method learnt from (``results.SETTINGS``).
        """
        start = time.perf_counter()
        official = "official" in _evaluations(self.config, name)
        scored = score_sets(
            method,
            self.images,
            sets,
            self.config.image_size,
            self.config.batch_size,
            self.examples(),
            official=official,
        )
        seconds = (time.perf_counter() - start) / len(sets)
        rows = []
        for s in sets:
            result = scored[s.name]
            with atomic_write(self._score_file(name, s)) as f:  # a kill leaves the old file or none, never half
                torch.save(_score_record(result, self.images, s), f)
            for evaluation in _evaluations(self.config, name):
                if self.results.done(name, self.task.name, _shots(s), _seed(s), evaluation):
                    continue
                labels = result.labels if evaluation == "honest" else result.labels[result.official_index]
                rows.append(
                    {
                        "method": name,
                        "test_task": self.task.name,
                        "shots": _shots(s),
                        "seed": _seed(s),
                        "evaluation": evaluation,
                        "setting": setting,
                        "train_shots": train_shots.get(_shots(s), ""),
                        **{k: round(v, 6) for k, v in result.metrics(evaluation).items()},
                        "n_normal": int((labels == 0).sum()),
                        "n_abnormal": int((labels == 1).sum()),
                        "train_seconds": train_seconds,
                        "eval_seconds": round(seconds, 2),
                    }
                )
                logger.info("%s %s (%s): AUROC %.4f", name, s.name, evaluation, rows[-1]["auroc"])
        self.results.add(rows)

    def _score_file(self, method: str, s: EvaluationSet) -> str:
        return score_file(self.config.output, method, self.task.name, _shots(s), _seed(s))


def _evaluations(config: ProtocolConfig, method: str) -> list[str]:
    """The evaluations of ``method``: the official-style scoring reads only the maps, so the global extension, whose
    score is not its map's, has honest rows only."""
    return [e for e in config.evaluations if e == "honest" or method != GLOBAL_METHOD]


def score_file(output: str, method: str, task: str, shots: int, seed: int) -> str:
    return os.path.join(output, "scores", slug(method), task, f"{shots}-shot_seed{seed}.pt")


def read_score_file(path: str) -> dict:
    """A score file this runner wrote: tensors, numbers and strings only (``weights_only``), so a tampered file in a
    results folder cannot run code; anything else is refused with an error naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for foreign objects, RuntimeError for truncated files
        raise ValueError(f"{path} is not a score file of this project (refused: {type(e).__name__}); remove it") from e


def _score_record(result: SetScores, images: ImageDataset, s: EvaluationSet) -> dict:
    examples = sorted(result.example_maps)
    return {
        "scores": result.scores,
        "labels": result.labels,
        "map_range": result.map_range,
        "examples": [images.items[i]["image"] for i in examples],
        "example_labels": [int(result.labels[i]) for i in examples],
        "example_scores": [float(result.scores[i]) for i in examples],
        "example_maps": [result.example_maps[i] for i in examples],
        "example_weights": [result.example_weights[i] for i in examples if i in result.example_weights],
        "support": s.support,
    }


def _shots(s: EvaluationSet) -> int:
    return len(s.support)


def _seed(s: EvaluationSet) -> int:
    return int(s.name.rsplit("seed", 1)[1])
