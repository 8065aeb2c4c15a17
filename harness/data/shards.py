"""Token shards in the challenge's binary format, and the streams read from them.

Format (PR940_SPEC.md s.1.1): a header of 256 little-endian int32 (magic 20240520,
version 1, token count, the rest zero), then `count` little-endian uint16 tokens.
Every check the official reader makes is made here too, plus token ids < vocab, and
each failure is a `BadInput` naming the file: a corrupt shard must never turn into
a traceback or into silently wrong tokens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.atomic import atomic_write_with
from harness.errors import BadInput

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_TOKENS = 2**31 - 1  # the count is an int32


def write_shard(path: str | os.PathLike, tokens: np.ndarray) -> Path:
    """Write `tokens` (any integer array with values in [0, 65535]) as one shard, atomically."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"{path}: tokens must be one-dimensional, got shape {tokens.shape}")
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"{path}: {len(tokens)} tokens do not fit one shard")
    if tokens.dtype != np.uint16:
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"{path}: tokens must be integers, got {tokens.dtype}")
        if len(tokens) and (tokens.min() < 0 or tokens.max() >= 2**16):
            raise ValueError(f"{path}: token ids must lie in [0, 65535]")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, VERSION, len(tokens)
    payload = tokens.astype("<u2", copy=False)

    def write(f):
        f.write(header.tobytes())
        f.write(payload.tobytes())

    return atomic_write_with(path, write)


def read_shard(path: str | os.PathLike, vocab_size: int | None = None) -> np.ndarray:
    """Read and validate one shard; return its tokens as uint16."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw_header = f.read(HEADER_BYTES)
            if len(raw_header) != HEADER_BYTES:
                raise BadInput(
                    f"{path}: not a token shard: {size} bytes, shorter than the "
                    f"{HEADER_BYTES}-byte header"
                )
            header = np.frombuffer(raw_header, dtype="<i4")
            if header[0] != MAGIC:
                raise BadInput(f"{path}: not a token shard: magic {header[0]}, expected {MAGIC}")
            if header[1] != VERSION:
                raise BadInput(f"{path}: unsupported shard version {header[1]}, expected {VERSION}")
            count = int(header[2])
            expected = HEADER_BYTES + 2 * count
            if count < 0 or size != expected:
                raise BadInput(
                    f"{path}: header says {count} tokens ({expected} bytes) "
                    f"but the file has {size} bytes"
                )
            tokens = np.fromfile(f, dtype="<u2", count=count)
    except OSError as e:
        raise BadInput(f"{path}: cannot read shard: {e.strerror or e}") from None
    if tokens.size != count:  # the file shrank between stat and read
        raise BadInput(f"{path}: truncated: read {tokens.size} of {count} tokens")
    if vocab_size is not None and count:
        top = int(tokens.max())
        if top >= vocab_size:
            at = int(np.argmax(tokens >= vocab_size))
            raise BadInput(
                f"{path}: token id {top} is outside the vocabulary of {vocab_size} "
                f"(first bad token at position {at})"
            )
    return tokens.astype(np.uint16, copy=False)


def find_shards(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """The `*_{split}_*.bin` shards of a dataset folder, sorted by name (the stream order)."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise BadInput(f"{dataset_dir}: dataset folder not found")
    files = sorted(p for p in dataset_dir.glob(f"*_{split}_*.bin") if p.is_file())
    if not files:
        raise BadInput(f"{dataset_dir}: no {split} shards (*_{split}_*.bin)")
    return files


def load_val_tokens(
    dataset_dir: str | os.PathLike, seq_len: int | None = None, vocab_size: int | None = None
) -> np.ndarray:
    """All val shards concatenated in sorted order (PR940_SPEC.md s.1.4).

    With `seq_len`, trimmed to ((N-1)//seq_len)*seq_len + 1 tokens, so that the
    targets form whole sequences of `seq_len`, exactly as the challenge does.
    """
    files = find_shards(dataset_dir, "val")
    tokens = np.concatenate([read_shard(f, vocab_size) for f in files])
    if seq_len is None:
        return tokens
    if seq_len <= 0:
        raise BadInput(f"seq_len must be positive, got {seq_len}")
    usable = ((len(tokens) - 1) // seq_len) * seq_len
    if usable <= 0:
        raise BadInput(
            f"{dataset_dir}: {len(tokens)} val tokens are too few for one sequence of {seq_len}"
        )
    return tokens[: usable + 1]


class TokenStream:
    """The shards' tokens one after another, wrapping to the first after the last.

    No shuffling and no sampling (PR940_SPEC.md s.1.3): `take(n)` returns the next
    n tokens of this endless stream.
    """

    def __init__(self, files: Sequence[str | os.PathLike], vocab_size: int | None = None):
        self.files = [Path(f) for f in files]
        if not self.files:
            raise BadInput("token stream needs at least one shard")
        self.vocab_size = vocab_size
        self._file_idx = 0
        self._tokens = read_shard(self.files[0], vocab_size)
        self._pos = 0

    def _next_file(self) -> None:
        self._file_idx = (self._file_idx + 1) % len(self.files)
        self._tokens = read_shard(self.files[self._file_idx], vocab_size=self.vocab_size)
        self._pos = 0

    def _advance(self, n: int, keep: bool) -> list[np.ndarray]:
        if n < 0:
            raise ValueError(f"cannot move {n} tokens")
        chunks = []
        remaining = n
        empty_in_a_row = 0
        while remaining > 0:
            avail = len(self._tokens) - self._pos
            if avail <= 0:
                empty_in_a_row += 1
                if empty_in_a_row > len(self.files):  # one full lap without a token
                    raise BadInput(f"{self.files[0].parent}: every shard of the stream is empty")
                self._next_file()
                continue
            empty_in_a_row = 0
            k = min(remaining, avail)
            if keep:
                chunks.append(self._tokens[self._pos : self._pos + k])
            self._pos += k
            remaining -= k
        return chunks

    def take(self, n: int) -> np.ndarray:
        chunks = self._advance(n, keep=True)
        if not chunks:
            return np.zeros(0, dtype=np.uint16)
        return chunks[0].copy() if len(chunks) == 1 else np.concatenate(chunks)

    def skip(self, n: int) -> None:
        """Move past n tokens without copying them (resuming a run mid-stream)."""
        self._advance(n, keep=False)


class DistributedTokenLoader:
    """Training batches for one rank of `world_size` (PR940_SPEC.md s.1.3).

    Every rank walks the same stream. Each call takes (local+1)*world_size tokens,
    local = global_tokens // (world_size*grad_accum); rank r keeps the contiguous
    span [r*(local+1), (r+1)*(local+1)) and splits it into inputs and next-token
    targets. The extra token per rank is consumed, not reused.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        rank: int = 0,
        world_size: int = 1,
        vocab_size: int | None = None,
    ):
        if world_size < 1 or not 0 <= rank < world_size:
            raise BadInput(f"rank {rank} is not in a world of size {world_size}")
        self.rank = rank
        self.world_size = world_size
        self.stream = TokenStream(files, vocab_size)

    def next_span(self, global_tokens: int, seq_len: int, grad_accum: int) -> np.ndarray:
        """This rank's (local+1) tokens of the next batch, as uint16."""
        if seq_len <= 0 or grad_accum <= 0:
            raise BadInput(f"seq_len ({seq_len}) and grad_accum ({grad_accum}) must be positive")
        local = global_tokens // (self.world_size * grad_accum)
        if local <= 0 or local % seq_len:
            raise BadInput(
                f"{global_tokens} tokens over {self.world_size} ranks x {grad_accum} "
                f"accumulation steps give {local} tokens per rank, not a positive "
                f"multiple of seq_len {seq_len}"
            )
        per_rank = local + 1
        chunk = self.stream.take(per_rank * self.world_size)
        return chunk[self.rank * per_rank : (self.rank + 1) * per_rank]

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum: int, device=None):
        """(x, y) int64 torch tensors of shape (local/seq_len, seq_len)."""
        import torch

        span = torch.from_numpy(self.next_span(global_tokens, seq_len, grad_accum).astype(np.int64))
        x = span[:-1].reshape(-1, seq_len)
        y = span[1:].reshape(-1, seq_len)
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return x, y
