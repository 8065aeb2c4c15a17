"""Round trips of the binary formats: the worker transport and the example's artifact."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, strategies as st

from harness.sandbox import protocol as P

from tests.evaluator.helpers import EXAMPLE

u32 = st.integers(0, 2**32 - 1)


@given(st.sampled_from([P.OP_SCORE, P.OP_OBSERVE, P.OP_SHUTDOWN]), u32, u32, u32, u32)
def test_request_round_trip(op, seq, rows, length, n_last):
    req = P.Request(op, seq, rows, length, n_last)
    assert P.decode_request(P.encode_request(req)) == req


@given(st.sampled_from([P.STATUS_OK, P.STATUS_ERROR, P.STATUS_READY, P.STATUS_HELLO]), u32, u32, u32, u32,
       st.text(max_size=50))
def test_response_round_trip(status, seq, rows, n_last, vocab, message):
    data = P.encode_response(status, seq, rows, n_last, vocab, message)
    head = P.decode_response_header(data[: P.RESPONSE.size])
    assert head[:5] == (status, seq, rows, n_last, vocab)
    assert data[P.RESPONSE.size:].decode("utf-8") == message and head[5] == len(message.encode())


@given(u32, u32, u32, u32)
def test_scores_header_round_trip_and_mismatch(seq, rows, n_last, vocab):
    header = P.encode_scores_header(seq, rows, n_last, vocab)
    P.check_scores_header(header, seq, rows, n_last, vocab)
    with pytest.raises(P.ProtocolError, match="shape"):
        P.check_scores_header(header, seq, rows, n_last, (vocab + 1) % 2**32)
    with pytest.raises(P.ProtocolError, match="request"):
        P.check_scores_header(header, (seq + 1) % 2**32, rows, n_last, vocab)


@pytest.mark.parametrize("garbage", [b"XXXX" + bytes(P.REQUEST.size - 4), P.REQUEST.pack(b"PGRQ", 99, 0, 0, 0, 0)])
def test_bad_request_frames_are_refused(garbage):
    with pytest.raises(P.ProtocolError):
        P.decode_request(garbage)


def test_oversized_message_claim_is_refused():
    with pytest.raises(P.ProtocolError, match="exceeds"):
        P.decode_response_header(P.RESPONSE.pack(b"PGRS", 0, 0, 0, 0, 0, P.MAX_MESSAGE + 1))


def _example_format():
    spec = importlib.util.spec_from_file_location("example_bigram_format", EXAMPLE / "bigram_format.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@given(st.integers(1, 40).flatmap(lambda v: st.tuples(
    st.just(v), st.lists(st.tuples(st.integers(0, v - 1), st.integers(0, v - 1), st.integers(1, 2**31)), max_size=30))),
    st.floats(0.0625, 10, width=32))
def test_example_artifact_round_trip(vocab_and_cells, alpha):
    vocab, cells = vocab_and_cells
    counts = np.zeros((vocab, vocab), dtype=np.int64)
    for a, b, c in cells:
        counts[a, b] = c
    fmt = _example_format()
    decoded, got_alpha = fmt.decode(fmt.encode(counts, alpha))
    assert (decoded == counts).all() and got_alpha == alpha
    with pytest.raises(ValueError):
        fmt.decode(fmt.encode(counts, alpha)[:-1] if cells else b"BGRM")
