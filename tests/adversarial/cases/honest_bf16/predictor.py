"""Honest control returning bfloat16 logits (as real models do); the harness casts to
float32. Must be accepted with the exact BPB of the bf16-rounded logits."""

import torch

from redteam_base import Bigram, read_weights


class Bf16Bigram(Bigram):
    def score(self, tokens, n_last):
        return super().score(tokens, n_last).to(torch.bfloat16)


def load(artifact_path, device):
    return Bf16Bigram(read_weights(artifact_path))
