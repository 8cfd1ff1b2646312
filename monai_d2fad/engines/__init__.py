"""Ignite/MONAI engines: distillation training (plain and episodic) and few-shot evaluation."""

from monai_d2fad.engines.checkpoint_saver import AtomicCheckpointSaver, AtomicDiskSaver
from monai_d2fad.engines.evaluator import FewShotEvaluator
from monai_d2fad.engines.tensorboard import TensorBoardEpisodes, TensorBoardHeatmaps
from monai_d2fad.engines.trainer import (
    DistillationTrainer,
    EpisodeBatch,
    EpisodicTrainer,
    LossTermsHandler,
    resume_from_latest,
    scalar_output,
)

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "DistillationTrainer",
    "EpisodeBatch",
    "EpisodicTrainer",
    "FewShotEvaluator",
    "LossTermsHandler",
    "TensorBoardEpisodes",
    "TensorBoardHeatmaps",
    "resume_from_latest",
    "scalar_output",
]
