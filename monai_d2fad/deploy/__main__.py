"""``python -m monai_d2fad.deploy -i INPUT -m MODEL_PATH -o OUTPUT``: run the MONAI Deploy application."""

from __future__ import annotations

import argparse
import sys


def help_parser() -> argparse.ArgumentParser:
    """The application's options as ``--help`` shows them (the SDK parses the same ``-i/-m/-o/-l`` when it runs)."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_d2fad.deploy",
        description="Score a DICOM study, an image folder or one image with a registered task (D²4FAD or DCAM) and "
        "write result.json, heatmaps/, report.pdf and, for DICOM input, a DICOM SR and the encapsulated PDF in dicom/.",
    )
    parser.add_argument(
        "-i", "--input", help="DICOM study folder, image folder or image file (default: $HOLOSCAN_INPUT_PATH, input)"
    )
    parser.add_argument(
        "-m",
        "--model",
        help="task package file (monai-d2fad register) or a folder holding one (default: $HOLOSCAN_MODEL_PATH, models)",
    )
    parser.add_argument("-o", "--output", help="output folder (default: $HOLOSCAN_OUTPUT_PATH, output)")
    parser.add_argument(
        "-l", "--log-level", choices=["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"], help="logging level"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    if {"-h", "--help"} & set(sys.argv[1:] if argv is None else argv):
        help_parser().print_help()  # the app's own options, not the Holoscan runtime's
        return 0
    try:
        from monai_d2fad.deploy.app import D2FADApp
    except ImportError as e:
        print(
            f"error: the MONAI Deploy App SDK is not installed ({e}); install it with: pip install -e '.[deploy]'",
            file=sys.stderr,
        )
        return 2
    if argv is not None:  # the application reads its -i/-m/-o from sys.argv
        sys.argv = [sys.argv[0], *argv]
    try:
        D2FADApp().run()
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
