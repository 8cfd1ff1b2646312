"""Export the scoring network to TorchScript or ONNX, with the normal references baked in or as an input.

    python -m monai_d2fad.export --checkpoint chest_xray.task.pt --format onnx --output chest_xray.onnx
    python -m monai_d2fad.export --checkpoint model.pt --support normals/ --format torchscript --output model.ts

Outputs: ``score [B]`` and ``map [B, 1, H, W]``. Baked-in references give one teacher and one student pass per
image; ``--supports_as_input`` adds an input ``support [K, 3, H, W]`` (one model for every task, but the references
are encoded on every call). The image size is fixed at export; batch size (and K) stay free. Every export is
checked against eager PyTorch on a fresh batch (onnxruntime for ONNX) and fails above ``--tolerance``.
"""

from __future__ import annotations

import argparse

import torch

from monai_d2fad.methods.base import TaskDetector
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.options import add_output_options, add_task_options, command_main
from monai_d2fad.outputs import check_overwrite
from monai_d2fad.task_package import task_from_args

__all__ = [
    "BakedScorer",
    "SupportInputScorer",
    "add_arguments",
    "export_onnx",
    "export_torchscript",
    "main",
    "max_difference",
    "run",
]


class BakedScorer(torch.nn.Module):
    """``images -> (scores, maps)`` of a registered task's detector, its state baked in (D²4FAD's cached references,
    DCAM's trained student)."""

    def __init__(self, detector: TaskDetector):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        detection = self.detector.detect_images(images, self.detector.task_state)
        return detection.scores, detection.maps


class SupportInputScorer(torch.nn.Module):
    """``(images, support) -> (scores, maps)``: the references are an input, encoded on each call."""

    def __init__(self, detector: D2FADDetector):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        detection = self.detector.detect_images(images, self.detector.fit(support))
        return detection.scores, detection.maps


def _names(module: torch.nn.Module) -> list[str]:
    return ["image", "support"] if isinstance(module, SupportInputScorer) else ["image"]


def export_torchscript(module: torch.nn.Module, example: tuple[torch.Tensor, ...], path: str) -> str:
    """Trace ``module`` on ``example`` inputs and save it (``torch.jit.script`` cannot compile the teachers)."""
    with torch.no_grad():
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
    traced.save(path)
    return path


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...], path: str) -> str:
    """Export with PyTorch's dynamo ONNX exporter, batch (and K) dynamic."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {"images": {0: batch}}
    if isinstance(module, SupportInputScorer):
        shapes["support"] = {0: torch.export.Dim("shots", min=1, max=64)}
    program = torch.onnx.export(
        module.eval(),
        example,
        input_names=_names(module),
        output_names=["score", "map"],
        dynamic_shapes=shapes,
        dynamo=True,
        verbose=False,
    )
    program.save(path)
    return path


def max_difference(path: str, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """Largest absolute difference between the exported file's outputs and eager ``module`` on ``inputs``."""
    with torch.no_grad():
        expected = module(*inputs)
    if path.endswith(".onnx"):
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {n: x.cpu().numpy() for n, x in zip(_names(module), inputs)})
        got = [torch.from_numpy(g) for g in got]
    else:
        with torch.no_grad():
            got = torch.jit.load(path)(*inputs)
    return max(float((g.cpu() - e.cpu()).abs().max()) for g, e in zip(got, expected))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``export``'s options."""
    add_task_options(p)
    p.add_argument("--format", choices=["torchscript", "onnx"], required=True, help="file format")
    add_output_options(p, "file to write (.ts/.pt for TorchScript, .onnx for ONNX)")
    p.add_argument("--supports_as_input", action="store_true", help="references as an input instead of baked in")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted difference from eager PyTorch")


def run(args: argparse.Namespace) -> dict:
    """Export the task of ``args.checkpoint`` and check the file against eager PyTorch."""
    try:
        check_overwrite([args.output], args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e
    package = task_from_args(args)
    detector = package.detector
    if args.supports_as_input and not isinstance(detector, D2FADDetector):
        raise SystemExit(f"error: --supports_as_input needs a D²4FAD model; {args.checkpoint} holds DCAM")
    module = SupportInputScorer(detector) if args.supports_as_input else BakedScorer(detector)
    size = package.image_size
    support = torch.rand(len(package.support_files), 3, size, size)
    example = (torch.rand(2, 3, size, size), support) if args.supports_as_input else (torch.rand(2, 3, size, size),)
    exporter = export_onnx if args.format == "onnx" else export_torchscript
    exporter(module, example, args.output)
    check = (torch.rand(3, 3, size, size), support) if args.supports_as_input else (torch.rand(3, 3, size, size),)
    difference = max_difference(args.output, module, check)
    if difference > args.tolerance:
        raise SystemExit(f"exported model differs from eager by {difference:.3g} > {args.tolerance}: {args.output}")
    print(f"wrote {args.output} ({args.format}, image {size}x{size}); max |difference| from eager {difference:.3g}")
    return {"path": args.output, "difference": difference}


def main(argv: list[str] | None = None) -> dict:
    return command_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
