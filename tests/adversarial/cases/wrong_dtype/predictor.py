"""Returns integer logits. Must be rejected (dtype)."""

import torch

from redteam_base import Bigram, read_weights


class Ints(Bigram):
    def score(self, tokens, n_last):
        return super().score(tokens, n_last).round().to(torch.int64)


def load(artifact_path, device):
    return Ints(read_weights(artifact_path))
