"""``python -m monai_d2fad.protocol``: the leave-one-task-out benchmark from the command line.

Its options are the fields of ``ProtocolConfig``; ``--config configs/protocol/<run>.json`` gives them from a file
(the runs behind docs/RESULTS.md), and options on the command line override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from collections.abc import Sequence

from monai_d2fad.options import command_main
from monai_d2fad.outputs import OutputLockedError
from monai_d2fad.protocol.config import FIELD_HELP, ProtocolConfig
from monai_d2fad.protocol.runner import run_protocol

DESCRIPTION = (
    "Leave-one-task-out few-shot benchmark: D²4FAD and baselines on the same tasks, splits and reference lists; "
    "results.csv (one row per method, task, K, seed), results.md, figures/. Rerunning with the same --output "
    "resumes: finished cells are skipped."
)
# earlier spellings of options, kept
ALIASES = {"ablations": ["--ablation"], "evaluations": ["--evaluation"]}


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One option per ``ProtocolConfig`` field (``--no_plots`` for ``plots``)."""
    hints = typing.get_type_hints(ProtocolConfig)
    for f in dataclasses.fields(ProtocolConfig):
        kind, default = hints[f.name], _default(f)
        required = default is dataclasses.MISSING
        if kind is bool:
            p.add_argument(f"--no_{f.name}", dest=f.name, action="store_false", help=f"do not {FIELD_HELP[f.name]}")
        elif typing.get_origin(kind) is list or list in typing.get_args(kind):
            names = [f"--{f.name}", *ALIASES.get(f.name, [])]
            p.add_argument(*names, dest=f.name, nargs="+", default=default, required=required, help=FIELD_HELP[f.name])
        else:
            number = kind is int or int in typing.get_args(kind)
            option = {"type": int} if number else {}
            default = None if required else default
            p.add_argument(f"--{f.name}", default=default, required=required, help=FIELD_HELP[f.name], **option)


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the protocol; bad settings end the command with a message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        config = ProtocolConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ProtocolConfig)})
        run_protocol(config)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError, OutputLockedError) as e:
        raise SystemExit(f"error: {e.args[0] if isinstance(e, KeyError) else e}") from e
    print(f"results: {config.output}/results.csv, {config.output}/results.md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return command_main(DESCRIPTION, add_arguments, run, argv, prog="python -m monai_d2fad.protocol")


if __name__ == "__main__":
    sys.exit(main())
