"""Finite but extreme logits (about +-3e38): every value passes an isfinite check, yet
log_softmax overflows for the targets it gives no mass. The harness must not report an
infinite or NaN BPB as a score, and its JSON must stay valid."""

import torch

from redteam_base import Bigram, read_weights


class Extreme(Bigram):
    def score(self, tokens, n_last):
        out = super().score(tokens, n_last)
        return torch.where(out > out.median(), 3.0e38, -3.0e38).to(torch.float32)


def load(artifact_path, device):
    return Extreme(read_weights(artifact_path))
