"""Networks: teachers, D²4FAD (student decoder, learn-to-weight), DCAM (mirrored student, attention blocks)."""

from monai_d2fad.networks.attention import ATTENTION_MODES, ConvAttention
from monai_d2fad.networks.d2fad import D2FAD, D2FADOutput
from monai_d2fad.networks.dcam import DCAM, DCAMOutput, DCAMStudent
from monai_d2fad.networks.decoder import ReverseDecoder, decoder_for
from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS, LearnToWeight, build_l2w
from monai_d2fad.networks.teachers import TEACHERS, Teacher, build_teacher

__all__ = [
    "ATTENTION_MODES",
    "D2FAD",
    "DCAM",
    "L2W_VARIANTS",
    "TEACHERS",
    "ConvAttention",
    "D2FADOutput",
    "DCAMOutput",
    "DCAMStudent",
    "LearnToWeight",
    "ReverseDecoder",
    "Teacher",
    "build_l2w",
    "build_teacher",
    "decoder_for",
]
