"""Networks: teachers (CNNs; DINOv2 ViTs in ``vit``), D²4FAD (student decoder, learn-to-weight), DCAM (mirrored
student, attention blocks), the two-student model (decoder and encoder students)."""

from monai_d2fad.networks.attention import ATTENTION_MODES, ConvAttention
from monai_d2fad.networks.d2fad import D2FAD, D2FADOutput
from monai_d2fad.networks.dcam import DCAM, DCAMOutput, DCAMStudent
from monai_d2fad.networks.decoder import ReverseDecoder, decoder_for
from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS, LearnToWeight, build_l2w
from monai_d2fad.networks.teachers import TEACHERS, Teacher, build_teacher
from monai_d2fad.networks.two_students import TwoStudents, TwoStudentsOutput
from monai_d2fad.networks.vit import VIT_TEACHERS, ViTTeacher, build_vit_teacher

__all__ = [
    "ATTENTION_MODES",
    "D2FAD",
    "DCAM",
    "L2W_VARIANTS",
    "TEACHERS",
    "VIT_TEACHERS",
    "ConvAttention",
    "D2FADOutput",
    "DCAMOutput",
    "DCAMStudent",
    "LearnToWeight",
    "ReverseDecoder",
    "Teacher",
    "TwoStudents",
    "TwoStudentsOutput",
    "ViTTeacher",
    "build_l2w",
    "build_teacher",
    "build_vit_teacher",
    "decoder_for",
]
