"""Cross-row peek: a row never reads its own later tokens; it finds the next row of the
batch (the window `stride` tokens later) and reads the target from there. Caught only
if the causality probe perturbs stream positions in every row that holds them."""

import torch

from redteam_base import Bigram, read_weights


def shift_between(a, b):
    """Smallest s with a[s:] == b[:len(a)-s] (b is a shifted by s), or None."""
    T = a.shape[0]
    for s in range(1, T):
        if torch.equal(a[s:], b[: T - s]):
            return s
    return None


class CrossRowPeek(Bigram):
    def score(self, tokens, n_last):
        out = super().score(tokens, n_last).clone()
        B, T = tokens.shape
        for r in range(B - 1):
            s = shift_between(tokens[r], tokens[r + 1])
            if s is None:
                continue
            for j in range(n_last):
                k = T - n_last + j + 1 - s  # where row r's next target sits in row r+1
                if 0 <= k < T:
                    out[r, j, tokens[r + 1, k]] += 30.0
        return out


def load(artifact_path, device):
    return CrossRowPeek(read_weights(artifact_path))
