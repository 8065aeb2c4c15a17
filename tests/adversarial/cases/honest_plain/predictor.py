"""Honest control: the plain rank-2 bigram. Must be accepted with the exact BPB."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
