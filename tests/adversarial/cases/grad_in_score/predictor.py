"""Gradient steps inside score(): trains the output bias on the window it was asked to
score (its later targets included), then scores. Breaks causality and purity."""

import torch
import torch.nn.functional as F

from redteam_base import Bigram, bigram_logits, read_weights


class TrainInScore(Bigram):
    def score(self, tokens, n_last):
        with torch.inference_mode(False), torch.enable_grad():
            tokens = tokens.clone()  # a normal tensor: the worker calls score() in inference mode
            w = self.weights.clone().requires_grad_(True)
            for _ in range(3):
                logits = bigram_logits(w, tokens[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, self.vocab), tokens[:, 1:].reshape(-1))
                (grad,) = torch.autograd.grad(loss, w)
                w = (w - 5.0 * grad).detach().requires_grad_(True)
            self.weights = w.detach()
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return TrainInScore(read_weights(artifact_path))
