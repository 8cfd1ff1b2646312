"""The detectors, all on one interface (``Detector``: ``encode`` queries once, ``fit`` K references, ``detect``).

``D2FADDetector`` (a trained D²4FAD) and three baselines that need no cross-task training: ``PatchCore``
(nearest-neighbour patch features), ``RD4ADPerTask`` (reverse distillation trained on the K references alone) and
``ImageNearestNeighbour`` (pooled features); the detectors of students trained on normal images (or on each reference
set, ``methods.students``): ``DCAMDetector`` (a mirrored student), ``TwoStudentsDetector`` (a decoder and an
encoder student joined by Noisy-OR) and ``PDDDetector`` (two students of a unified two-teacher manifold). A new
detector adds its own module here.
"""

from monai_d2fad.methods.base import Detection, Detector, FrozenTeacherDetector, TaskDetector
from monai_d2fad.methods.d2fad import D2FADDetector, D2FADFeatures, D2FADReferences
from monai_d2fad.methods.dcam import DCAMDetector, DCAMQueries, DCAMTraining, train_dcam
from monai_d2fad.methods.image_nn import ImageNearestNeighbour
from monai_d2fad.methods.patchcore import PatchCore
from monai_d2fad.methods.pdd import PDDDetector, PDDTraining, train_pdd
from monai_d2fad.methods.rd4ad import RD4ADPerTask
from monai_d2fad.methods.students import TrainedStudentsDetector, image_items, train_students
from monai_d2fad.methods.two_students import TwoStudentsDetector, TwoStudentsTraining, train_two_students

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
    "PDDDetector",
    "PDDTraining",
    "PatchCore",
    "RD4ADPerTask",
    "TaskDetector",
    "TrainedStudentsDetector",
    "TwoStudentsDetector",
    "TwoStudentsTraining",
    "image_items",
    "train_dcam",
    "train_pdd",
    "train_students",
    "train_two_students",
]
