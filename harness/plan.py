"""The evaluation plan: which windows are scored, in which order, and when observe() runs.

A pure function of (n_tokens, seq_len, stride, ttt_chunk, batch_seqs); it never sees a
token. Coordinates are positions in the validation stream x[0..N-1]. Position 0 (the
first BOS) is context only; the targets are positions 1..N-1, and target p is predicted
from the inputs x[..p-1].

A window is the row x[start:end]. The model's output at its last `n_score` positions
predicts the targets end-n_score+1 .. end, so a row never holds its own last target
(DESIGN.md "The strict protocol", invariant 2).

Official sliding-window semantics, with each target scored exactly once:
- while a target t <= seq_len can be scored from a window starting at 0, one window
  x[0:e] scores every such target up to e = min(seq_len, last target of the chunk):
  each of them gets its maximal left context;
- after that, targets go in groups of `stride`; the window of a group ends at its
  last target and holds seq_len tokens, so the first target of a group has
  seq_len - stride + 1 tokens of context. stride == seq_len gives non-overlapping
  windows. The last group is simply shorter (no rescoring of a tail).

Test-time training: targets are cut into chunks of `ttt_chunk` positions
(chunk k = positions [k*C + 1, (k+1)*C + 1)). Groups never cross a chunk boundary, so
every window belongs to one chunk, and all windows of chunk k come before
Observe(chunk k). The observed spans tile [0, N): chunk 0 also carries position 0, the
BOS that opens the stream, which is context and never a target.

Requests: consecutive windows of one chunk with the same length and the same n_score
go together, at most `batch_seqs` rows, because score(tokens[B, T], n_last) has one T
and one n_last per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from harness.errors import BadInput

DEFAULT_SEQ_LEN = 2048
DEFAULT_STRIDE = 64
DEFAULT_BATCH_SEQS = 16


@dataclass(frozen=True)
class Window:
    start: int  # first input position
    end: int  # one past the last input position == the last target position
    n_score: int  # number of scored targets: end - n_score + 1 .. end

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def first_target(self) -> int:
        return self.end - self.n_score + 1


@dataclass(frozen=True)
class Score:
    index: int  # request number, 0-based, in plan order
    chunk: int  # the chunk whose targets it scores
    windows: tuple[Window, ...]

    @property
    def length(self) -> int:
        return self.windows[0].length

    @property
    def n_last(self) -> int:
        return self.windows[0].n_score

    @property
    def n_targets(self) -> int:
        return len(self.windows) * self.n_last


@dataclass(frozen=True)
class Observe:
    chunk: int
    start: int  # the tokens x[start:end] are passed to observe()
    end: int


Step = Score | Observe


def check_plan_args(n_tokens: int, seq_len: int, stride: int, ttt_chunk: int | None, batch_seqs: int) -> None:
    """BadInput naming the first bad argument."""
    for name, value in (("seq_len", seq_len), ("stride", stride), ("batch_seqs", batch_seqs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInput(f"{name} must be a positive integer, got {value!r}")
    if stride > seq_len:
        raise BadInput(f"stride ({stride}) must not exceed seq_len ({seq_len})")
    if ttt_chunk is not None and (not isinstance(ttt_chunk, int) or isinstance(ttt_chunk, bool) or ttt_chunk < 1):
        raise BadInput(f"ttt_chunk must be a positive integer, got {ttt_chunk!r}")
    if not isinstance(n_tokens, int) or n_tokens < 2:
        raise BadInput(f"the validation stream needs at least 2 tokens, got {n_tokens!r}")


def _windows(first: int, last: int, seq_len: int, stride: int) -> Iterator[Window]:
    """Windows scoring the targets first..last (inclusive) once each."""
    t = first
    while t <= last:
        end = min(seq_len, last) if t <= seq_len else min(t + stride - 1, last)
        yield Window(start=max(0, end - seq_len), end=end, n_score=end - t + 1)
        t = end + 1


def iter_plan(
    n_tokens: int, seq_len: int = DEFAULT_SEQ_LEN, stride: int = DEFAULT_STRIDE,
    ttt_chunk: int | None = None, batch_seqs: int = DEFAULT_BATCH_SEQS,
) -> Iterator[Step]:
    """The ordered steps for a stream of n_tokens tokens (lazy: memory does not grow with N)."""
    check_plan_args(n_tokens, seq_len, stride, ttt_chunk, batch_seqs)
    last_target = n_tokens - 1
    chunk_size = ttt_chunk if ttt_chunk is not None else last_target
    index = 0
    for chunk, first in enumerate(range(1, last_target + 1, chunk_size)):
        last = min(first + chunk_size - 1, last_target)
        batch: list[Window] = []
        for w in _windows(first, last, seq_len, stride):
            if batch and (len(batch) == batch_seqs or (w.length, w.n_score) != (batch[0].length, batch[0].n_score)):
                yield Score(index, chunk, tuple(batch))
                index += 1
                batch = []
            batch.append(w)
        if batch:
            yield Score(index, chunk, tuple(batch))
            index += 1
        if ttt_chunk is not None:
            yield Observe(chunk, 0 if chunk == 0 else first, last + 1)


def plan(n_tokens: int, seq_len: int = DEFAULT_SEQ_LEN, stride: int = DEFAULT_STRIDE,
         ttt_chunk: int | None = None, batch_seqs: int = DEFAULT_BATCH_SEQS) -> list[Step]:
    """iter_plan as a list (small streams, tests)."""
    return list(iter_plan(n_tokens, seq_len, stride, ttt_chunk, batch_seqs))


def plan_shape(n_tokens: int, seq_len: int, stride: int, ttt_chunk: int | None, batch_seqs: int) -> tuple[int, int]:
    """(number of Score requests, largest rows * n_last of any request): sizes the transport."""
    requests, largest = 0, 0
    for step in iter_plan(n_tokens, seq_len, stride, ttt_chunk, batch_seqs):
        if isinstance(step, Score):
            requests += 1
            largest = max(largest, step.n_targets)
    return requests, largest
