import pytest
import torch

from monai_d2fad.export import BakedScorer, SupportInputScorer, export_onnx, export_torchscript, max_difference
from monai_d2fad.export import main as export_main
from monai_d2fad.inference import FewShotDetector


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("baked", [True, False])
@pytest.mark.parametrize("global_weight", [0.0, 2.0])  # the paper's D²4FAD; with this project's global extension
def test_export_matches_eager(tmp_path, tiny_model, fmt, baked, global_weight):
    """TorchScript (loaded back with torch.jit) and ONNX (run in onnxruntime) on a batch size not seen at export."""
    detector = FewShotDetector(tiny_model(global_weight=global_weight)).set_support(torch.rand(3, 3, 64, 64))
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    module = BakedScorer(detector) if baked else SupportInputScorer(detector)
    support = torch.rand(3, 3, 64, 64)
    example = (torch.rand(2, 3, 64, 64),) if baked else (torch.rand(2, 3, 64, 64), support)
    exporter = export_onnx if fmt == "onnx" else export_torchscript
    path = exporter(module, example, str(tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts")))
    check = (torch.rand(5, 3, 64, 64),) if baked else (torch.rand(5, 3, 64, 64), support)
    assert max_difference(path, module, check) < 1e-4


def test_export_command_from_a_task_package(tmp_path, task_package_file):
    package = task_package_file()
    result = export_main(["--checkpoint", package, "--format", "torchscript", "--output", str(tmp_path / "t.ts")])
    assert result["difference"] < 1e-4
    with pytest.raises(SystemExit, match="--overwrite"):
        export_main(["--checkpoint", package, "--format", "torchscript", "--output", str(tmp_path / "t.ts")])
