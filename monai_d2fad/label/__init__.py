"""MONAI Label integration of D²4FAD (extra ``[label]``): ``D2FADInferTask`` and the sample app in
``sample_app/``. Importing this package needs ``monailabel``; the core package never imports it."""

from monai_d2fad.label.infer import D2FADInferTask

__all__ = ["D2FADInferTask"]
