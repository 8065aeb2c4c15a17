"""Validation BPB during training (non-overlapping windows, PR940_SPEC s.6.2) and
the unigram reference it is compared with."""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from harness.bpb import bits_per_byte, target_bytes


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def val_bpb(model, val_tokens: np.ndarray, tables, seq_len: int, batch_seqs: int, device: torch.device,
            rank: int = 0, world_size: int = 1) -> tuple[float, float]:
    """(bpb, mean nll in nats) over disjoint windows of `seq_len`; ranks split the windows
    contiguously and sum (nll, tokens, bytes) in float64."""
    n_seqs = (len(val_tokens) - 1) // seq_len
    lo, hi = n_seqs * rank // world_size, n_seqs * (rank + 1) // world_size
    sums = torch.zeros(3, dtype=torch.float64)  # nll, tokens, bytes
    was_training = model.training
    model.eval()
    for s in range(lo, hi, batch_seqs):
        e = min(s + batch_seqs, hi)
        span = val_tokens[s * seq_len:e * seq_len + 1].astype(np.int64)
        x_np, y_np = span[:-1].reshape(-1, seq_len), span[1:].reshape(-1, seq_len)
        x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
        with autocast(device):
            logits = model(x)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        sums += torch.tensor([float(nll), y.numel(), float(target_bytes(tables, x_np, y_np).sum())], dtype=torch.float64)
    model.train(was_training)
    if world_size > 1:
        dist.all_reduce(sums)
    nll_sum, n_tokens, n_bytes = sums.tolist()
    return bits_per_byte(nll_sum, int(n_bytes)), nll_sum / max(n_tokens, 1)


def unigram_bpb(train_counts: np.ndarray, val_tokens: np.ndarray, tables) -> float:
    """BPB of a unigram model with add-one smoothing fit on train-token counts, on the
    same targets (val_tokens[1:]) that val_bpb scores."""
    vocab = len(train_counts)
    logp = np.log(train_counts.astype(np.float64) + 1.0) - math.log(train_counts.sum() + vocab)
    prev, tgt = val_tokens[:-1].astype(np.int64), val_tokens[1:].astype(np.int64)
    nll = -logp[tgt].sum()
    return bits_per_byte(float(nll), int(target_bytes(tables, prev, tgt).sum()))
