"""The BPB an honest control must get, computed here in-process, independently of the
evaluator: every target x[t] (t = 1..N-1) is scored once from x[t-1] (the controls are
bigrams, so windows do not matter), with the state test-time training would have at
t's chunk (chunk k covers targets [k*C + 1, (k+1)*C + 1); chunk 0 sees no counts, chunk
k > 0 the counts of x[0 : k*C + 1], everything observe() got before it).
log_softmax over the vocabulary in float32, sums in float64, bytes from the tokenizer's
piece table.

Exactness to 1e-9 needs the same float32 arithmetic as the harness, not only the same
maths: the log-softmax below is the textbook float32 form (subtract the row maximum,
log of the float32 sum of exponentials), which is what harness.evaluator applies
(DESIGN.md: "log_softmax itself, over the full vocabulary, in float32"). Different
float32 formulas drift apart by about 1e-9 of the total.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import torch

from harness.bpb import target_bytes
from harness.data.tokenizer import build_byte_tables, load_tokenizer
from tests.adversarial.runner import case_weights, redteam_base

TTT_SCALE = 0.5  # honest_ttt adds TTT_SCALE * log1p(count) to each token's logit


def target_nll(logits: torch.Tensor, targets: np.ndarray) -> np.ndarray:
    x = logits.numpy().astype(np.float32)
    shifted = x - x.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True, dtype=np.float32))
    return -log_probs[np.arange(len(targets)), targets].astype(np.float64)


def expected_bpb(case: str, submission: Path, dataset_dir: Path, tokenizer: Path) -> float:
    manifest = tomllib.loads((submission / "submission.toml").read_text())
    ev, vocab = manifest.get("eval", {}), manifest["submission"]["vocab_size"]
    from harness.evaluator import val_stream

    stream = val_stream(dataset_dir, vocab).astype(np.int64)
    weights = torch.from_numpy(case_weights(case, vocab))
    prev, tgt = stream[:-1], stream[1:]
    chunk = ev.get("ttt_chunk") if case == "honest_ttt" else None
    size = chunk or len(tgt)
    nll = 0.0
    for lo in range(0, len(tgt), size):
        logits = redteam_base.bigram_logits(weights, torch.from_numpy(prev[lo:lo + size]))
        if chunk:
            seen = stream[: lo + 1] if lo else stream[:0]
            counts = torch.bincount(torch.from_numpy(seen), minlength=vocab).to(torch.float32)
            logits = logits + torch.log1p(counts) * TTT_SCALE
        if case == "honest_bf16":
            logits = logits.to(torch.bfloat16).to(torch.float32)
        nll += float(target_nll(logits, tgt[lo:lo + size]).sum())
    tables = build_byte_tables(load_tokenizer(tokenizer), vocab)
    n_bytes = int(target_bytes(tables, prev, tgt).sum())
    return nll / (math.log(2) * n_bytes)
