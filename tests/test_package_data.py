"""The bundle and MONAI Label's sample app are package data: found through the package, shipped in its wheel."""

import glob
import os

import pytest

import monai_d2fad
from monai_d2fad.bundle_runs import BUNDLE_CONFIGS

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
PACKAGE = os.path.dirname(os.path.abspath(monai_d2fad.__file__))
ROOT = os.path.dirname(PACKAGE)


def _shipped(package: str, patterns: list[str]) -> set[str]:
    base = os.path.join(ROOT, *package.split("."))
    found = set()
    for pattern in patterns:
        found |= {p for p in glob.glob(os.path.join(base, pattern), recursive=True) if os.path.isfile(p)}
    return found


def test_bundle_and_label_app_are_inside_the_package_and_declared_as_package_data():
    assert os.path.commonpath([BUNDLE_CONFIGS, PACKAGE]) == PACKAGE
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        declared = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    shipped = set().union(*(_shipped(package, patterns) for package, patterns in declared.items()))
    bundle = set(glob.glob(os.path.join(os.path.dirname(BUNDLE_CONFIGS), "**"), recursive=True))
    bundle = {p for p in bundle if os.path.isfile(p)}
    sample_app = set(glob.glob(os.path.join(PACKAGE, "label", "sample_app", "**", "*.*"), recursive=True))
    assert {"main.py", "README.md", "requirements.txt", "d2fad_anomaly.py"} <= {os.path.basename(p) for p in sample_app}
    assert os.path.join(BUNDLE_CONFIGS, "train.json") in bundle
    assert bundle and sample_app and (bundle | sample_app) <= shipped


def test_the_checkout_bundles_folder_is_the_package_bundle():
    assert os.path.samefile(os.path.join(ROOT, "bundles", "d2fad_fewshot", "configs"), BUNDLE_CONFIGS)
