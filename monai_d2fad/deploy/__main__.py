"""``python -m monai_d2fad.deploy -i INPUT -m MODEL_PATH -o OUTPUT``: run the MONAI Deploy application."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
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
