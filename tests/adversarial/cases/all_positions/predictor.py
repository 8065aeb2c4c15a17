"""Ignores n_last and returns logits for every position of the window. Must be rejected
(shape)."""

from redteam_base import Bigram, read_weights


class Everything(Bigram):
    def score(self, tokens, n_last):
        return super().score(tokens, tokens.shape[1])


def load(artifact_path, device):
    return Everything(read_weights(artifact_path))
