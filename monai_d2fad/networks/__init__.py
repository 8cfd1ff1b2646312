"""Networks: teachers (CNNs; DINOv2 ViTs in ``vit``; the user's encoder in ``external_teacher``), D²4FAD (student
decoder, learn-to-weight), DCAM (mirrored student, attention blocks), the two-student model (decoder and encoder
students), PDD (two teachers' manifold, two students)."""

from monai_d2fad.networks.attention import ATTENTION_MODES, ConvAttention
from monai_d2fad.networks.d2fad import D2FAD, D2FADOutput
from monai_d2fad.networks.dcam import DCAM, DCAMOutput, DCAMStudent
from monai_d2fad.networks.decoder import ReverseDecoder, decoder_for
from monai_d2fad.networks.external_teacher import ExternalTeacher, build_external_teacher
from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS, LearnToWeight, build_l2w
from monai_d2fad.networks.pdd import PDD, PDDOutput
from monai_d2fad.networks.teachers import TEACHERS, Teacher, build_teacher
from monai_d2fad.networks.two_students import TwoStudents, TwoStudentsOutput
from monai_d2fad.networks.vit import VIT_TEACHERS, ViTTeacher, build_vit_teacher

__all__ = [
    "ATTENTION_MODES",
    "D2FAD",
    "DCAM",
    "L2W_VARIANTS",
    "PDD",
    "TEACHERS",
    "VIT_TEACHERS",
    "ConvAttention",
    "D2FADOutput",
    "DCAMOutput",
    "DCAMStudent",
    "ExternalTeacher",
    "LearnToWeight",
    "PDDOutput",
    "ReverseDecoder",
    "Teacher",
    "TwoStudents",
    "TwoStudentsOutput",
    "ViTTeacher",
    "build_external_teacher",
    "build_l2w",
    "build_teacher",
    "build_vit_teacher",
    "decoder_for",
]
