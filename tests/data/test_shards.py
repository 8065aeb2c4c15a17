"""Shard format: round trips, and every way a shard can be corrupt."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from harness.cli import main
from harness.data.shards import (
    HEADER_BYTES,
    HEADER_INTS,
    MAGIC,
    VERSION,
    find_shards,
    load_val_tokens,
    read_shard,
    write_shard,
)
from harness.errors import BadInput

token_arrays = arrays(np.uint16, st.integers(0, 3000), elements=st.integers(0, 2**16 - 1))


@settings(max_examples=40, deadline=None)
@given(tokens=token_arrays)
def test_write_read_round_trip(tokens):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_shard(Path(tmp) / "x_val_000000.bin", tokens)
        raw = path.read_bytes()
        header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
        assert list(header[:3]) == [MAGIC, VERSION, len(tokens)] and not header[3:].any()
        assert len(raw) == HEADER_BYTES + 2 * len(tokens)
        back = read_shard(path)
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, tokens)


def test_write_accepts_wider_ints_and_rejects_out_of_range(tmp_path):
    path = write_shard(tmp_path / "a.bin", np.array([0, 5, 65535], dtype=np.int64))
    assert read_shard(path).tolist() == [0, 5, 65535]
    for bad in ([-1], [65536]):
        with pytest.raises(ValueError):
            write_shard(tmp_path / "b.bin", np.array(bad))
    assert not (tmp_path / "b.bin").exists()


def _shard_bytes(tokens, magic=MAGIC, version=VERSION, count=None) -> bytes:
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = magic, version, len(tokens) if count is None else count
    return header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes()


GOOD = list(range(100))


def _expect_bad(path: Path, fragment: str, vocab_size=None):
    with pytest.raises(BadInput) as e:
        read_shard(path, vocab_size)
    message = str(e.value)
    assert str(path) in message and fragment in message and "\n" not in message


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(0, HEADER_BYTES + 2 * len(GOOD) - 1))
def test_any_truncation_is_bad_input(cut):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.bin"
        path.write_bytes(_shard_bytes(GOOD)[:cut])
        _expect_bad(path, "shard" if cut < HEADER_BYTES else "bytes")


@pytest.mark.parametrize(
    "name, data, fragment",
    [
        ("empty", b"", "shorter than"),
        ("magic", _shard_bytes(GOOD, magic=20240521), "magic 20240521"),
        ("text", b"not a shard at all" * 100, "magic"),
        ("version", _shard_bytes(GOOD, version=2), "version 2"),
        ("count_high", _shard_bytes(GOOD, count=101), "header says 101 tokens"),
        ("count_low", _shard_bytes(GOOD, count=99), "header says 99 tokens"),
        ("count_negative", _shard_bytes(GOOD, count=-1), "header says -1 tokens"),
        ("extra_byte", _shard_bytes(GOOD) + b"\0", "bytes"),
    ],
)
def test_corrupt_shard_is_bad_input(tmp_path, name, data, fragment):
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    _expect_bad(path, fragment)


def test_token_outside_vocab_is_bad_input(tmp_path):
    path = tmp_path / "vocab.bin"
    path.write_bytes(_shard_bytes([1, 2, 1023, 1024, 7]))
    assert read_shard(path, vocab_size=1025).max() == 1024
    _expect_bad(path, "token id 1024", vocab_size=1024)
    _expect_bad(path, "position 3", vocab_size=1024)


def test_missing_file_and_folder_are_bad_input(tmp_path):
    _expect_bad(tmp_path / "absent.bin", "cannot read")
    _expect_bad(tmp_path, "")  # a folder is not a shard
    with pytest.raises(BadInput, match="no val shards"):
        find_shards(tmp_path, "val")
    with pytest.raises(BadInput, match="not found"):
        find_shards(tmp_path / "nope", "val")


def test_cli_check_reports_corrupt_shard_in_one_line(tmp_path, capsys):
    good = write_shard(tmp_path / "d_val_000000.bin", np.arange(50))
    assert main(["data", "check", str(good), "--vocab-size", "1024"]) == 0
    assert "50 tokens" in capsys.readouterr().out
    bad = tmp_path / "d_val_000001.bin"
    bad.write_bytes(_shard_bytes(GOOD, version=3))
    assert main(["data", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=4),
    seq_len=st.integers(1, 64),
)
def test_val_tokens_concatenate_sorted_shards_and_trim(sizes, seq_len):
    rng = np.random.default_rng(len(sizes) * 1000 + seq_len)
    shards = [rng.integers(0, 1024, size=n, dtype=np.uint16) for n in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        for i in reversed(range(len(shards))):  # creation order must not matter
            write_shard(Path(tmp) / f"c_val_{i:06d}.bin", shards[i])
        write_shard(Path(tmp) / "c_train_000000.bin", np.arange(9))  # never part of val
        everything = np.concatenate(shards)
        np.testing.assert_array_equal(load_val_tokens(tmp), everything)
        usable = ((len(everything) - 1) // seq_len) * seq_len
        if usable <= 0:
            with pytest.raises(BadInput, match="too few"):
                load_val_tokens(tmp, seq_len)
        else:
            trimmed = load_val_tokens(tmp, seq_len, vocab_size=1024)
            assert (len(trimmed) - 1) % seq_len == 0
            np.testing.assert_array_equal(trimmed, everything[: usable + 1])
