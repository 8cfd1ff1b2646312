"""Command-line option groups that several commands share, so that each option is spelled (and documented) once.

Every command module has ``add_arguments(parser)`` and ``run(args)``; ``monai-d2fad <command>`` (``cli``) and
``python -m monai_d2fad.<module>`` (``command_main``) both build their parser from them. Every command also takes
``--config FILE``: option values from a JSON/YAML file (the experiment configs under ``configs/``), read with MONAI's
``ConfigParser``; options given on the command line override the file's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from monai.bundle import ConfigParser

__all__ = [
    "HelpFormatter",
    "add_config_option",
    "add_output_options",
    "add_task_options",
    "add_threshold_options",
    "apply_config",
    "command_main",
    "declare",
    "threshold_arg",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with each option's default (not for flags, whose default is their absence), and descriptions kept
    as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.nargs == 0 else super()._get_help_string(action)


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


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="JSON/YAML file of option values; the command line overrides it")


def _config_path(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Make the values of ``argv``'s ``--config`` file ``parser``'s defaults (keys are option names without
    ``--``); an option the file sets is no longer required on the command line."""
    path = _config_path(argv)
    if path is None:
        return
    if not os.path.isfile(path):
        parser.error(f"--config {path} does not exist")
    config = ConfigParser()
    config.read_config(path)
    values = {k: v for k, v in config.get_parsed_content().items() if k != "_meta_"}  # MONAI adds _meta_
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        parser.error(f"{path} sets {unknown}, which are not options of this command")
    for key in values:
        actions[key].required = False
    parser.set_defaults(**values)


def declare(
    parser: argparse.ArgumentParser, add_arguments: Callable[[argparse.ArgumentParser], None], argv: Sequence[str]
) -> None:
    """A command's options on ``parser``: its own (``add_arguments``), ``--config``, and the defaults that ``argv``'s
    config file gives (``apply_config``)."""
    add_arguments(parser)
    add_config_option(parser)
    apply_config(parser, argv)


def command_main(
    description: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], object],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
):
    """Parse ``argv`` with the options ``add_arguments`` declares and ``run`` the command."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    argv = list(sys.argv[1:] if argv is None else argv)
    declare(parser, add_arguments, argv)
    return run(parser.parse_args(argv))
