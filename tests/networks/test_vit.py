"""The DINOv2-compatible ViT teacher: official parameter names, loading a checkpoint file, token layers."""

import pytest
import torch

from monai_d2fad.networks.vit import VIT_TEACHERS, DinoVisionTransformer, ViTTeacher, build_vit_teacher

# names and shapes of the official dinov2_vitb14_reg4_pretrain.pth (DINOv2's model card), a sample
OFFICIAL_B14_REG4 = {
    "cls_token": (1, 1, 768),
    "pos_embed": (1, 1370, 768),
    "register_tokens": (1, 4, 768),
    "mask_token": (1, 768),
    "patch_embed.proj.weight": (768, 3, 14, 14),
    "patch_embed.proj.bias": (768,),
    "blocks.0.norm1.weight": (768,),
    "blocks.0.attn.qkv.weight": (2304, 768),
    "blocks.0.attn.qkv.bias": (2304,),
    "blocks.0.attn.proj.weight": (768, 768),
    "blocks.0.ls1.gamma": (768,),
    "blocks.0.norm2.bias": (768,),
    "blocks.0.mlp.fc1.weight": (3072, 768),
    "blocks.0.mlp.fc2.weight": (768, 3072),
    "blocks.11.ls2.gamma": (768,),
    "norm.weight": (768,),
    "norm.bias": (768,),
}


def test_parameter_names_and_shapes_are_dinov2s():
    with torch.device("meta"):
        net = DinoVisionTransformer(VIT_TEACHERS["dinov2_vitb14_reg4"])
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert all(shapes[k] == v for k, v in OFFICIAL_B14_REG4.items())
    assert len(shapes) == 4 + 2 + 12 * 14 + 2  # tokens, patch embedding, 14 tensors a block, final norm


def test_a_checkpoint_file_loads_unchanged_and_bad_files_are_named(tmp_path):
    source = ViTTeacher("vit_test")
    path = tmp_path / "vit_test_pretrain.pth"
    torch.save(source.net.state_dict(), path)
    teacher = build_vit_teacher("vit_test", str(path))
    assert teacher.fingerprint() == source.fingerprint()
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(FileNotFoundError, match=r"missing\.pth.*official vit_test_pretrain\.pth"):
        build_vit_teacher("vit_test", str(tmp_path / "missing.pth"))
    state = source.net.state_dict()
    state["blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth do not fit the vit_test teacher"):
        build_vit_teacher("vit_test", str(tmp_path / "bad.pth"))


@pytest.mark.parametrize("size", [64, 48])
def test_token_layers_follow_the_input_grid(size):
    teacher = build_vit_teacher("vit_test", None)
    grids, classes = teacher.token_layers(torch.rand(2, 3, size, size))
    assert len(grids) == 4 and grids[0].shape == (2, 32, size // 8, size // 8)
    assert len(classes) == 5 and classes[-1].shape == (2, 32)  # every block, then the final normed token
    with pytest.raises(TypeError, match="token_layers"):
        teacher(torch.rand(1, 3, 64, 64))
