"""Ignite/MONAI engines: episodic dual-distillation training and few-shot evaluation."""

from monai_d2fad.engines.checkpoint_saver import AtomicCheckpointSaver, AtomicDiskSaver
from monai_d2fad.engines.evaluator import EvaluationDataset, EvaluationSet, FewShotEvaluator, evaluation_sets
from monai_d2fad.engines.trainer import EpisodicTrainer, resume_from_latest

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "EpisodicTrainer",
    "EvaluationDataset",
    "EvaluationSet",
    "FewShotEvaluator",
    "evaluation_sets",
    "resume_from_latest",
]
