"""Honest control whose code + artifact total exactly 16,000,000 bytes (the runner pads
the artifact). At the cap is allowed: must be accepted with the exact BPB."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
