"""Train streaming: sequential wrap-around stream, and per-rank contiguous spans."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.data.shards import DistributedTokenLoader, TokenStream, write_shard
from harness.errors import BadInput


def _write(tmp: str, sizes: list[int]) -> tuple[list[Path], np.ndarray]:
    files, parts = [], []
    for i, n in enumerate(sizes):
        tokens = (np.arange(n) + 1000 * i) % 65536  # distinct values show where tokens came from
        files.append(write_shard(Path(tmp) / f"s_train_{i:06d}.bin", tokens))
        parts.append(tokens.astype(np.uint16))
    return files, np.concatenate(parts)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 200), min_size=1, max_size=4).filter(lambda s: sum(s) > 0),
    takes=st.lists(st.integers(0, 500), max_size=8),
)
def test_stream_is_the_shards_in_order_wrapping(sizes, takes):
    with tempfile.TemporaryDirectory() as tmp:
        files, everything = _write(tmp, sizes)
        stream = TokenStream(files)
        got = np.concatenate([stream.take(n) for n in takes] + [np.zeros(0, np.uint16)])
        laps = len(got) // len(everything) + 1
        np.testing.assert_array_equal(got, np.tile(everything, laps)[: len(got)])


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(0, 100), min_size=1, max_size=3).filter(lambda s: sum(s) > 0),
       skip=st.integers(0, 700), take=st.integers(0, 300))
def test_skip_is_take_without_the_tokens(sizes, skip, take):
    with tempfile.TemporaryDirectory() as tmp:
        files, _ = _write(tmp, sizes)
        skipped = TokenStream(files)
        skipped.skip(skip)
        np.testing.assert_array_equal(skipped.take(take), TokenStream(files).take(skip + take)[skip:])


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=3),
    world_size=st.integers(1, 4),
    grad_accum=st.integers(1, 3),
    seq_len=st.integers(1, 16),
    seqs_per_rank=st.integers(1, 3),
    steps=st.integers(1, 4),
)
def test_ranks_read_disjoint_contiguous_spans_of_one_stream(
    sizes, world_size, grad_accum, seq_len, seqs_per_rank, steps
):
    global_tokens = seqs_per_rank * seq_len * world_size * grad_accum
    local = global_tokens // (world_size * grad_accum)
    with tempfile.TemporaryDirectory() as tmp:
        files, _ = _write(tmp, sizes)
        loaders = [DistributedTokenLoader(files, r, world_size) for r in range(world_size)]
        single = TokenStream(files)
        for _ in range(steps):
            spans = [ld.next_span(global_tokens, seq_len, grad_accum) for ld in loaders]
            assert all(len(s) == local + 1 for s in spans)
            # rank r's span is the r-th contiguous block; together they are exactly the stream
            np.testing.assert_array_equal(np.concatenate(spans), single.take((local + 1) * world_size))


def test_next_batch_shifts_targets_by_one(tmp_path):
    files = [write_shard(tmp_path / "t_train_000000.bin", np.arange(1000))]
    x, y = DistributedTokenLoader(files, rank=1, world_size=2).next_batch(64, 8, grad_accum=2)
    assert x.shape == y.shape == (2, 8) and str(x.dtype) == "torch.int64"
    # local = 16 tokens per rank, span of rank 1 starts at 17
    assert x.flatten().tolist() == list(range(17, 33))
    assert y.flatten().tolist() == list(range(18, 34))


def test_bad_loader_arguments_are_bad_input(tmp_path):
    files = [write_shard(tmp_path / "t_train_000000.bin", np.arange(10))]
    with pytest.raises(BadInput):
        DistributedTokenLoader(files, rank=2, world_size=2)
    with pytest.raises(BadInput, match="multiple of seq_len"):
        DistributedTokenLoader(files).next_span(100, 7, 1)
    empty = [write_shard(tmp_path / "e_train_000000.bin", np.zeros(0, np.uint16))]
    with pytest.raises(BadInput, match="empty"):
        TokenStream(empty).take(1)
