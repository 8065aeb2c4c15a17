"""A listed code file lives in a folder that is a symlink (made at test time) to a folder
outside the submission. Bad input."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
