"""The detectors, all on one interface (``Detector``: ``encode`` queries once, ``fit`` K references, ``detect``).

``D2FADDetector`` (a trained D²4FAD) and three baselines that need no cross-task training: ``PatchCore``
(nearest-neighbour patch features), ``RD4ADPerTask`` (reverse distillation trained on the K references alone) and
``ImageNearestNeighbour`` (pooled features); ``DCAMDetector`` (a mirrored student trained on normal images, or on
each reference set). A new detector adds its own module here.
"""

from monai_d2fad.methods.base import Detection, Detector, FrozenTeacherDetector, TaskDetector
from monai_d2fad.methods.d2fad import D2FADDetector, D2FADFeatures, D2FADReferences
from monai_d2fad.methods.dcam import DCAMDetector, DCAMQueries, DCAMTraining, train_dcam
from monai_d2fad.methods.image_nn import ImageNearestNeighbour
from monai_d2fad.methods.patchcore import PatchCore
from monai_d2fad.methods.rd4ad import RD4ADPerTask

__all__ = [
    "D2FADDetector",
    "D2FADFeatures",
    "D2FADReferences",
    "DCAMDetector",
    "DCAMQueries",
    "DCAMTraining",
    "Detection",
    "Detector",
    "FrozenTeacherDetector",
    "ImageNearestNeighbour",
    "PatchCore",
    "RD4ADPerTask",
    "TaskDetector",
    "train_dcam",
]
