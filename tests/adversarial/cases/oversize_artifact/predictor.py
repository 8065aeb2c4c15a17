"""Honest code with an artifact padded so code + artifact is 16,000,001 bytes: one byte
over the decimal cap. Must be rejected for size."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
