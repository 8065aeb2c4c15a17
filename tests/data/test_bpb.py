"""BPB aggregation: the uniform predictor, and agreement with torch cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from harness.bpb import bits_per_byte, target_bytes
from harness.data.shards import load_val_tokens
from harness.data.tokenizer import build_byte_tables, load_tokenizer
from harness.errors import BadInput


@given(vocab=st.integers(2, 1 << 17), tokens=st.integers(1, 10**9), n_bytes=st.integers(1, 10**10))
def test_uniform_predictor_scores_log2_vocab_per_token(vocab, tokens, n_bytes):
    nll_sum = tokens * math.log(vocab)
    assert bits_per_byte(nll_sum, n_bytes) == pytest.approx(math.log2(vocab) * tokens / n_bytes, rel=1e-12)


def test_uniform_logits_on_real_val_tokens(tiny_data):
    import torch

    tokens = load_val_tokens(tiny_data.dataset_dir, seq_len=128, vocab_size=tiny_data.vocab_size)
    tables = build_byte_tables(load_tokenizer(tiny_data.tokenizer_path), tiny_data.vocab_size)
    x, y = tokens[:-1].astype(np.int64), tokens[1:].astype(np.int64)
    logits = torch.zeros(len(y), tiny_data.vocab_size, dtype=torch.float64)
    nll = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="sum").item()
    n_bytes = int(target_bytes(tables, x, y).sum())
    assert n_bytes > 0
    assert bits_per_byte(nll, n_bytes) == pytest.approx(10 * len(y) / n_bytes, rel=1e-12)


def test_bad_arguments():
    with pytest.raises(BadInput):
        bits_per_byte(1.0, 0)

    class Tables:
        size = 4
        base_bytes = np.array([0, 0, 1, 2], dtype=np.int16)
        has_leading_space = np.array([False, False, False, True])
        is_boundary = np.array([True, True, False, False])

    assert target_bytes(Tables, [1, 2, 3], [3, 3, 1]).tolist() == [2, 3, 0]
    with pytest.raises(BadInput, match="token id 4"):
        target_bytes(Tables, [1], [4])
    with pytest.raises(ValueError):
        target_bytes(Tables, [1, 2], [3])
