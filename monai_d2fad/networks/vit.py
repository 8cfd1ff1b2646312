"""A ViT whose parameter names are those of the official DINOv2 checkpoints (``dinov2_vitb14_reg4_pretrain.pth``
and its family), so that those files load unchanged, as the ResNets load torchvision's; and the teacher built on it.

Written from the architecture DINOv2's paper and model card describe (pre-norm blocks with LayerScale, GELU MLP,
optional register tokens, a learned position embedding interpolated to the input's patch grid); no DINOv2 code.
No ViT weights install offline: ``weights`` must name the user's checkpoint file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.teachers import Teacher, load_teacher_state

__all__ = ["VIT_TEACHERS", "DinoVisionTransformer", "ViTSpec", "ViTTeacher", "build_vit_teacher"]


@dataclass(frozen=True)
class ViTSpec:
    """The shape of a DINOv2 ViT: width, depth, heads, patch size, register tokens, training image size."""

    dim: int
    depth: int
    heads: int
    patch: int = 14
    registers: int = 0
    image_size: int = 518


VIT_TEACHERS = {
    "dinov2_vits14": ViTSpec(384, 12, 6),
    "dinov2_vitb14": ViTSpec(768, 12, 12),
    "dinov2_vits14_reg4": ViTSpec(384, 12, 6, registers=4),
    "dinov2_vitb14_reg4": ViTSpec(768, 12, 12, registers=4),  # the paper's teacher
    "vit_test": ViTSpec(32, 4, 2, patch=8, registers=4, image_size=64),  # tiny, random: tests only
}


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale (DINOv2's names: ``norm1, attn, ls1, norm2, mlp, ls2``)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, 4 * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """The DINOv2 ViT: ``blocks(x)`` gives every block's tokens ``[B, 1 + R + N, D]`` (class, registers, patches)."""

    def __init__(self, spec: ViTSpec):
        super().__init__()
        self.spec = spec
        grid = spec.image_size // spec.patch
        self.patch_embed = PatchEmbed(spec.patch, spec.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, spec.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, spec.dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, spec.registers, spec.dim)) if spec.registers else None
        self.mask_token = nn.Parameter(torch.zeros(1, spec.dim))  # unused at inference; in the official files
        self.blocks = nn.ModuleList(Block(spec.dim, spec.heads) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(spec.dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def position_embedding(self, rows: int, cols: int) -> torch.Tensor:
        """The class token's embedding and the patch embeddings resized (bicubic) to a ``rows x cols`` grid."""
        cls, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        side = int(patches.shape[1] ** 0.5)
        if (rows, cols) != (side, side):
            grid = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
            patches = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([cls, patches], dim=1)

    def blocks_tokens(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output tokens of normalised images ``x`` ``[B, 3, H, W]`` (H, W multiples of the patch)."""
        rows, cols = x.shape[-2] // self.spec.patch, x.shape[-1] // self.spec.patch
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(rows, cols)
        if self.register_tokens is not None:
            registers = self.register_tokens.expand(len(x), -1, -1)
            tokens = torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)
        out = []
        for block in self.blocks:
            tokens = block(tokens)
            out.append(tokens)
        return out


class ViTTeacher(Teacher):
    """A DINOv2 ViT as a teacher (frozen by ``build_vit_teacher``) or, unfrozen and random, as a student.

    ``token_layers(x)`` gives what the two-student model distils: the patch tokens of every block as grids
    ``[B, D, H / patch, W / patch]`` and the class token of every block, then the final (normed) one. It has no CNN
    feature pyramid, so D²4FAD and DCAM do not take it.
    """

    def __init__(self, name: str, normalize: str | None = None):
        super().__init__(normalize or "imagenet")
        self.spec = look_up_option(name, VIT_TEACHERS)
        self.net = DinoVisionTransformer(self.spec)
        self.channels = (self.spec.dim,) * 4

    def _grid(self, tokens: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        patches = tokens[:, 1 + self.spec.registers :]
        return patches.transpose(1, 2).reshape(len(tokens), -1, rows, cols)

    def token_layers(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Patch grids of every block and class tokens of every block plus the final normed one, of RGB ``x``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            layers = self.net.blocks_tokens(self.normalize(x))
            rows, cols = x.shape[-2] // self.spec.patch, x.shape[-1] // self.spec.patch
            grids = [self._grid(t, rows, cols) for t in layers]
            classes = [t[:, 0] for t in layers] + [self.net.norm(layers[-1])[:, 0]]
        return grids, classes

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise TypeError("a ViT teacher gives token_layers (patch grids, class tokens), not a CNN feature pyramid")


def build_vit_teacher(name: str, weights: str | os.PathLike | None, normalize: str | None = None) -> ViTTeacher:
    """A frozen DINOv2 ViT teacher from the official checkpoint file ``weights`` (e.g.
    ``dinov2_vitb14_reg4_pretrain.pth``), or random (None: tests).

    Raises:
        FileNotFoundError: naming the file when it is absent (no DINOv2 weights install offline).
        ValueError: naming the file when its parameters do not fit ``name``.
    """
    teacher = ViTTeacher(name, normalize)
    if weights is not None:
        if str(weights) == "imagenet" or not os.path.isfile(weights):
            raise FileNotFoundError(
                f"DINOv2 weights {weights!r} not found: download the official {name}_pretrain.pth checkpoint "
                "(DINOv2's model card) and give its path; no ViT weights install offline"
            )
        state = torch.load(weights, map_location="cpu", weights_only=True)
        load_teacher_state(teacher.net.load_state_dict, state, weights, name)
    return teacher.freeze()
