"""``python -m monai_d2fad <command>``: see ``monai_d2fad.cli``."""

from monai_d2fad.cli import main

if __name__ == "__main__":
    main()
