"""The entrypoint is a symlink (made at test time) to a file outside the folder. Bad input."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
