"""``monai-d2fad <command>`` (also ``python -m monai_d2fad``): one entry point for what users do.

Each command lives in its own module, which declares its options (``add_arguments``) and runs them (``run``); the
``python -m monai_d2fad.<module>`` forms use the same two functions. Modules are imported only for the command run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import monai_d2fad
from monai_d2fad.options import HelpFormatter, declare

__all__ = ["COMMANDS", "console", "main"]

# command: (module, its options function, its run function, one line of help)
COMMANDS = {
    "train": ("monai_d2fad.bundle_runs", "add_train_arguments", "train", "train D²4FAD with the MONAI Bundle"),
    "evaluate": ("monai_d2fad.bundle_runs", "add_evaluate_arguments", "evaluate", "evaluate a bundle checkpoint"),
    "global-weight": (
        "monai_d2fad.global_weight",
        "add_arguments",
        "run",
        "choose the global extension's weight on val",
    ),
    "register": ("monai_d2fad.task_package", "add_arguments", "run", "freeze a model and K references into a task"),
    "predict": ("monai_d2fad.predict", "add_arguments", "run", "score images, folders, series or volumes"),
    "export": ("monai_d2fad.export", "add_arguments", "run", "export a task to TorchScript or ONNX"),
    "protocol": ("monai_d2fad.protocol.__main__", "add_arguments", "run", "the leave-one-task-out benchmark"),
    "benchmark": ("monai_d2fad.benchmark", "add_arguments", "run", "inference speed and memory"),
    "benchmark-training": ("monai_d2fad.training_benchmark", "add_arguments", "run", "training episodes per second"),
    "deploy": ("monai_d2fad.deploy.__main__", None, "main", "the MONAI Deploy application (-i, -m, -o)"),
}


def _parser(command: str | None, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to declare its options (and ``--config``)."""
    parser = argparse.ArgumentParser(
        prog="monai-d2fad", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"monai-d2fad {monai_d2fad.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, options, _, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary, formatter_class=HelpFormatter)
        if name != command:  # only the command run declares its options (the Deploy app's: ``main``)
            continue
        imported = importlib.import_module(module)
        sub.description = imported.__doc__ or summary
        declare(sub, getattr(imported, options), argv)
    return parser


def main(argv: Sequence[str] | None = None) -> object:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "deploy":  # the Deploy app parses its own options, its --help included
        module, _, run, _ = COMMANDS[command]
        return getattr(importlib.import_module(module), run)(argv[argv.index(command) + 1 :])
    args = _parser(command if command in COMMANDS else None, argv).parse_args(argv)
    module, _, run, _ = COMMANDS[args.command]
    return getattr(importlib.import_module(module), run)(args)


def console() -> int | None:
    """The ``monai-d2fad`` console script: ``main``, passing on an exit status a command returns (``deploy``).
    Other return values (a written path, results) are for Python callers: given to the script's ``sys.exit``, they
    would be printed and the command would exit with status 1 on success."""
    status = main()
    return status if isinstance(status, int) else None
