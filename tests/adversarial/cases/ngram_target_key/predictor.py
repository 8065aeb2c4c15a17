"""The PR #779 construct: a hashed n-gram cache whose full-context key is built from the
realized target (read from the window), smoothed and blended into the target's logit.
Counts are only updated in observe(), after scoring; that does not make it legal. The
static audit must flag it and the causality probe must reject it."""

import numpy as np
import torch

from redteam_base import Bigram, read_weights

BUCKETS = 1 << 16
PRIME = 1000003
ALPHA = 0.8


class HashedNgramMixer(Bigram):
    def __init__(self, weights):
        super().__init__(weights)
        self.ctx_table = np.zeros(BUCKETS, dtype=np.float64)
        self.full_table = np.zeros(BUCKETS, dtype=np.float64)

    def score(self, tokens, n_last):
        out = super().score(tokens, n_last).clone()
        probs = torch.softmax(out, dim=-1)
        T = tokens.shape[1]
        for r in range(tokens.shape[0]):
            for j in range(n_last - 1):
                p = T - n_last + j
                ctx_key = (int(tokens[r, p - 1]) * 131 + int(tokens[r, p])) % BUCKETS
                target = int(tokens[r, p + 1])
                full_key = (ctx_key ^ (target * PRIME)) % BUCKETS
                p_ngram = (min(self.full_table[full_key], self.ctx_table[ctx_key]) + 1.0) / (self.ctx_table[ctx_key] + 2.0)
                mixed = (1 - ALPHA) * float(probs[r, j, target]) + ALPHA * p_ngram
                out[r, j, target] += float(np.log(mixed / float(probs[r, j, target])))
        return out

    def observe(self, tokens):
        t = tokens.tolist()
        for i in range(2, len(t)):
            ctx_key = (t[i - 2] * 131 + t[i - 1]) % BUCKETS
            self.ctx_table[ctx_key] += 1
            self.full_table[(ctx_key ^ (t[i] * PRIME)) % BUCKETS] += 1


def load(artifact_path, device):
    return HashedNgramMixer(read_weights(artifact_path))
