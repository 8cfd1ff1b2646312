"""Command-line option groups that several commands share, so that each option is spelled (and documented) once.

Every command module has ``add_arguments(parser)`` and ``run(args)``; ``monai-d2fad <command>`` (``cli``) and
``python -m monai_d2fad.<module>`` (``command_main``) both build their parser from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = [
    "HelpFormatter",
    "add_output_options",
    "add_task_options",
    "add_threshold_options",
    "command_main",
    "threshold_arg",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with each option's default, and descriptions kept as written."""


def threshold_arg(value: str) -> float | str:
    """``--threshold``: a number, or ``loo``."""
    return value if value == "loo" else float(value)


def add_task_options(parser: argparse.ArgumentParser, support_required: bool = False) -> None:
    """The model and its references: a checkpoint plus ``--support``, or a task package."""
    group = parser.add_argument_group("model and references")
    group.add_argument("--checkpoint", required=True, help="checkpoint, or task package (references and threshold in)")
    group.add_argument(
        "--support",
        required=support_required,
        default=None,
        help="normal references: a folder, a support list file or one image",
    )
    group.add_argument(
        "--modality", default=None, help="preset: generic, xray, mri, ct, fundus, histopathology (a package's own)"
    )
    group.add_argument("--image_size", type=int, default=None, help="model input size (128, or the package's)")
    group.add_argument("--teacher_weights", default="config", help="teacher weights if not where the checkpoint says")


def add_threshold_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """How the decision threshold is chosen (see ``calibration``)."""
    group = parser.add_argument_group("decision threshold")
    group.add_argument(
        "--threshold",
        type=threshold_arg,
        default=default,
        help="a number, or 'loo' (leave-one-out over the references); None: a package's own, else 'loo'",
    )
    group.add_argument("--validation", default=None, help="labelled folder (good/ + abnormal kinds) to calibrate on")


def add_output_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Where the results go; nothing there is replaced without ``--overwrite``."""
    group = parser.add_argument_group("output")
    group.add_argument("--output", required=True, help=what)
    group.add_argument("--overwrite", action="store_true", help="replace what a previous run wrote there")


def command_main(
    description: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], object],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
):
    """Parse ``argv`` with the options ``add_arguments`` declares and ``run`` the command."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
