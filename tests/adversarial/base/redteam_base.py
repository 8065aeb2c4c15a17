"""Shared by every red-team submission: the honest scorer, the artifact format and the
escape attempts. The test runner copies this file into each case folder (and lists it in
`code`), so a case folder holds only what makes that case different.

Honest scorer: a rank-2 bigram. For an input token x the logits over the vocabulary are
    u0[x] * w0 + u1[x] * w1 + b
computed elementwise in float32 (no matmul), so the numbers do not depend on how rows are
batched and the test can recompute them bit for bit in-process.

Artifact: b"RTBG", uint32 vocab, then 5 * vocab little-endian float32 (u0, u1, w0, w1, b).
Anything after that is ignored (the cap cases pad the file).

Attack settings (host paths, listener ports, marker names) come from `attack.json` beside
the artifact; the runner writes it into the temporary copy of the case. The escape
attempts live in redteam_escape.py, copied only into the cases that list it in `code`
(so the static audit sees network code only where a case really uses it).
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import torch

MAGIC = b"RTBG"
N_ROWS = 5


def parse_weights(blob: bytes) -> torch.Tensor:
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise ValueError("not a red-team bigram artifact")
    (vocab,) = struct.unpack("<I", blob[4:8])
    raw = np.frombuffer(blob, dtype="<f4", count=min(N_ROWS * vocab, (len(blob) - 8) // 4), offset=8)
    if raw.size != N_ROWS * vocab:
        raise ValueError("truncated weights")
    return torch.from_numpy(raw.reshape(N_ROWS, vocab).copy())


def weights_size(vocab: int) -> int:
    return 8 + 4 * N_ROWS * vocab


def read_weights(path: str) -> torch.Tensor:
    """The weights at the start of the artifact (anything after them is ignored)."""
    with open(path, "rb") as f:
        head = f.read(8)
        vocab = struct.unpack("<I", head[4:])[0] if len(head) == 8 else 0
        return parse_weights(head + f.read(4 * N_ROWS * vocab))


def weights_bytes(weights: np.ndarray) -> bytes:
    """The artifact for a float32 array of shape (5, vocab)."""
    weights = np.asarray(weights, dtype="<f4")
    return MAGIC + struct.pack("<I", weights.shape[1]) + weights.tobytes()


def bigram_logits(weights: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """float32 logits [..., vocab] for the next token after each input token."""
    u0, u1, w0, w1, b = weights
    return (u0[inputs].unsqueeze(-1) * w0 + u1[inputs].unsqueeze(-1) * w1) + b


def boost_next(scores: torch.Tensor, tokens: torch.Tensor, n_last: int, rows=None) -> torch.Tensor:
    """The future-token peek: raise the logit of the token that actually comes next.

    Position T-n_last+j predicts tokens[:, T-n_last+j+1]; inside the window that token is
    already an input for every scored position but the last.
    """
    out = scores.clone()
    T = tokens.shape[1]
    rows = range(tokens.shape[0]) if rows is None else rows
    for r in rows:
        for j in range(n_last - 1):
            out[r, j, tokens[r, T - n_last + j + 1]] += 30.0
    return out


class Bigram:
    """The honest predictor every attack starts from."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights
        self.vocab = weights.shape[1]

    def score(self, tokens: torch.Tensor, n_last: int) -> torch.Tensor:
        return bigram_logits(self.weights, tokens[:, -n_last:])


def attack_config(artifact_path: str) -> dict:
    path = os.path.join(os.path.dirname(artifact_path), "attack.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
