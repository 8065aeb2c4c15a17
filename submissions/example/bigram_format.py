"""The example's artifact format: sparse bigram counts, little endian, no pickle.

    magic b"BGRM" | version u32 (=1) | vocab u32 | alpha f32 | n u32
    then n records: prev u16 | next u16 | count u32

Zero counts are not stored; alpha is the additive smoothing every cell gets.
"""

from __future__ import annotations

import struct

import numpy as np

HEADER = struct.Struct("<4sIIfI")
RECORD = np.dtype([("prev", "<u2"), ("next", "<u2"), ("count", "<u4")])


def encode(counts: np.ndarray, alpha: float) -> bytes:
    """counts: int [V, V] array of bigram counts (prev, next)."""
    vocab = counts.shape[0]
    prev, nxt = np.nonzero(counts)
    records = np.empty(len(prev), dtype=RECORD)
    records["prev"], records["next"], records["count"] = prev, nxt, counts[prev, nxt]
    return HEADER.pack(b"BGRM", 1, vocab, alpha, len(records)) + records.tobytes()


def decode(data: bytes) -> tuple[np.ndarray, float]:
    """(counts int64 [V, V], alpha); ValueError on anything malformed."""
    if len(data) < HEADER.size:
        raise ValueError("artifact shorter than its header")
    magic, version, vocab, alpha, n = HEADER.unpack_from(data)
    if magic != b"BGRM" or version != 1:
        raise ValueError(f"not a version-1 bigram artifact (magic {magic!r}, version {version})")
    if len(data) != HEADER.size + n * RECORD.itemsize:
        raise ValueError(f"artifact holds {len(data)} bytes, its header announces {n} records")
    records = np.frombuffer(data, dtype=RECORD, count=n, offset=HEADER.size)
    if n and (records["prev"].max() >= vocab or records["next"].max() >= vocab):
        raise ValueError("a record names a token outside the vocabulary")
    counts = np.zeros((vocab, vocab), dtype=np.int64)
    np.add.at(counts, (records["prev"].astype(np.int64), records["next"].astype(np.int64)), records["count"])
    return counts, float(alpha)
