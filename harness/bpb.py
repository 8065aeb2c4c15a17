"""Bits per byte, byte exact (PR940_SPEC.md s.2.2).

A target token t after the token p is worth base_bytes[t] bytes, plus one for the
space its piece starts with unless p is a boundary (BOS, other control ids): that
way the bytes of a document's tokens add up to the UTF-8 length of its decoded
text, and a BOS target scores its loss against 0 bytes.
"""

from __future__ import annotations

import math

import numpy as np

from harness.errors import BadInput


def target_bytes(tables, prev, tgt) -> np.ndarray:
    """Bytes of each target in `tgt` given the token before it in `prev` (same shapes), int64."""
    prev = np.asarray(prev, dtype=np.int64)
    tgt = np.asarray(tgt, dtype=np.int64)
    if prev.shape != tgt.shape:
        raise ValueError(f"prev {prev.shape} and tgt {tgt.shape} differ in shape")
    size = tables.size
    for name, ids in (("previous", prev), ("target", tgt)):
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            bad = int(ids.max()) if ids.max() >= size else int(ids.min())
            raise BadInput(f"{name} token id {bad} is outside the byte tables (size {size})")
    space = tables.has_leading_space[tgt] & ~tables.is_boundary[prev]
    return tables.base_bytes[tgt].astype(np.int64) + space.astype(np.int64)


def bits_per_byte(nll_sum_nats: float, n_bytes: int) -> float:
    """sum(nll) / (ln 2 * sum(bytes)), in float64."""
    if n_bytes <= 0:
        raise BadInput(f"cannot compute bits per byte over {n_bytes} bytes")
    return float(np.float64(nll_sum_nats) / (np.float64(math.log(2)) * np.float64(n_bytes)))
