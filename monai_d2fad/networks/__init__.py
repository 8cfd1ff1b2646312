"""Networks of D²4FAD: teachers, student decoder, learn-to-weight and the model."""

from monai_d2fad.networks.d2fad import D2FAD, D2FADOutput
from monai_d2fad.networks.decoder import ReverseDecoder, decoder_for
from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS, LearnToWeight, build_l2w
from monai_d2fad.networks.teachers import TEACHERS, Teacher, build_teacher

__all__ = [
    "D2FAD",
    "L2W_VARIANTS",
    "TEACHERS",
    "D2FADOutput",
    "LearnToWeight",
    "ReverseDecoder",
    "Teacher",
    "build_l2w",
    "build_teacher",
    "decoder_for",
]
