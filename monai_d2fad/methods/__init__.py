"""The detectors the benchmark protocol compares on identical tasks, splits and reference lists.

``D2FADMethod`` (a trained D²4FAD) and three baselines that need no cross-task training:
``PatchCore`` (nearest-neighbour patch features), ``RD4ADPerTask`` (reverse distillation trained on the K
references alone) and ``ImageNearestNeighbour`` (pooled features).
"""

from monai_d2fad.methods.base import FewShotMethod, FrozenTeacherMethod
from monai_d2fad.methods.d2fad import D2FADMethod
from monai_d2fad.methods.image_nn import ImageNearestNeighbour
from monai_d2fad.methods.patchcore import PatchCore
from monai_d2fad.methods.rd4ad import RD4ADPerTask

__all__ = ["D2FADMethod", "FewShotMethod", "FrozenTeacherMethod", "ImageNearestNeighbour", "PatchCore", "RD4ADPerTask"]
