"""monai-d2fad: MONAI-native dual distillation for few-shot anomaly detection (D²4FAD)."""

__version__ = "0.1.0"
