"""Honest control with test-time training: observe() counts the scored tokens and
score() adds 0.5*log1p(count) to each token's logit. Legal (score before update); must be
accepted with the exact BPB."""

import torch

from redteam_base import Bigram, read_weights


class CountingBigram(Bigram):
    def __init__(self, weights):
        super().__init__(weights)
        self.counts = torch.zeros(self.vocab, dtype=torch.float32)

    def score(self, tokens, n_last):
        return super().score(tokens, n_last) + torch.log1p(self.counts) * 0.5

    def observe(self, tokens):
        self.counts += torch.bincount(tokens.cpu(), minlength=self.vocab).to(torch.float32)


def load(artifact_path, device):
    return CountingBigram(read_weights(artifact_path))
