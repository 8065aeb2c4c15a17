"""Baseline submission: the dequantized model, scored as is (no test-time training)."""

from reference_model.config import TTTConfig
from reference_model.predictor import ReferencePredictor, load as load_reference


def load(artifact_path: str, device: str) -> ReferencePredictor:
    return load_reference(artifact_path, device, TTTConfig(enabled=False))
