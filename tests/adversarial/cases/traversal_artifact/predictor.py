"""submission.toml points the artifact at ../ (path traversal). Bad input (exit 2)."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
