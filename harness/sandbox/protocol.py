"""Fixed binary framing between the harness and its worker (no pickle anywhere).

Requests (harness -> worker, a pipe): a 24-byte header
    magic b"PGRQ", op u32, seq u32, rows u32, length u32, n_last u32   (little endian)
followed by rows*length int32 tokens. ops: SCORE (rows x length, score the last
n_last positions), OBSERVE (rows = 1, n_last = 0), SHUTDOWN (no payload).

Responses (worker -> harness, a pipe): a 28-byte header
    magic b"PGRS", status u32, seq u32, rows u32, n_last u32, vocab u32, msg_len u32
followed by msg_len bytes of UTF-8 (the error text for status ERROR). HELLO is sent
once the worker has imported its libraries, before any submission code runs (the time
limit starts there); READY once after load(), its `rows` field 1 when the predictor
has observe().

Scores (worker -> harness, a file both map; the harness reads it with pread so a
truncated file cannot fault it): a 32-byte header
    magic b"PGSC", version u32, seq u32, dtype u32 (1 = float32), rows u32, n_last u32,
    vocab u32, reserved u32
followed by rows*n_last*vocab little-endian float32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

REQUEST = struct.Struct("<4sIIIII")
RESPONSE = struct.Struct("<4sIIIIII")
SCORES = struct.Struct("<4sIIIIIII")
REQUEST_MAGIC, RESPONSE_MAGIC, SCORES_MAGIC = b"PGRQ", b"PGRS", b"PGSC"
SCORES_VERSION = 1
DTYPE_FLOAT32 = 1

OP_SCORE, OP_OBSERVE, OP_SHUTDOWN = 1, 2, 3
STATUS_OK, STATUS_ERROR, STATUS_READY, STATUS_HELLO = 0, 1, 2, 3
MAX_MESSAGE = 4096  # longer error texts are cut by the worker; longer claims are garbage


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame."""


@dataclass(frozen=True)
class Request:
    op: int
    seq: int
    rows: int
    length: int
    n_last: int


@dataclass(frozen=True)
class Response:
    status: int
    seq: int
    rows: int
    n_last: int
    vocab: int
    message: str


def encode_request(req: Request) -> bytes:
    return REQUEST.pack(REQUEST_MAGIC, req.op, req.seq, req.rows, req.length, req.n_last)


def decode_request(header: bytes) -> Request:
    magic, op, seq, rows, length, n_last = REQUEST.unpack(header)
    if magic != REQUEST_MAGIC or op not in (OP_SCORE, OP_OBSERVE, OP_SHUTDOWN):
        raise ProtocolError(f"bad request header {header!r}")
    return Request(op, seq, rows, length, n_last)


def encode_response(status: int, seq: int, rows: int = 0, n_last: int = 0, vocab: int = 0, message: str = "") -> bytes:
    text = message.encode("utf-8", "replace")[:MAX_MESSAGE]
    return RESPONSE.pack(RESPONSE_MAGIC, status, seq, rows, n_last, vocab, len(text)) + text


def decode_response_header(header: bytes) -> tuple[int, int, int, int, int, int]:
    """(status, seq, rows, n_last, vocab, msg_len), or ProtocolError."""
    magic, status, seq, rows, n_last, vocab, msg_len = RESPONSE.unpack(header)
    if magic != RESPONSE_MAGIC:
        raise ProtocolError(f"bad response magic {magic!r}")
    if status not in (STATUS_OK, STATUS_ERROR, STATUS_READY, STATUS_HELLO):
        raise ProtocolError(f"unknown response status {status}")
    if msg_len > MAX_MESSAGE:
        raise ProtocolError(f"response message of {msg_len} bytes exceeds {MAX_MESSAGE}")
    return status, seq, rows, n_last, vocab, msg_len


def encode_scores_header(seq: int, rows: int, n_last: int, vocab: int) -> bytes:
    return SCORES.pack(SCORES_MAGIC, SCORES_VERSION, seq, DTYPE_FLOAT32, rows, n_last, vocab, 0)


def check_scores_header(header: bytes, seq: int, rows: int, n_last: int, vocab: int) -> None:
    """ProtocolError unless the header announces exactly the expected float32 block."""
    if len(header) != SCORES.size:
        raise ProtocolError(f"scores header is {len(header)} bytes, expected {SCORES.size}")
    magic, version, got_seq, dtype, got_rows, got_n, got_vocab, _ = SCORES.unpack(header)
    if magic != SCORES_MAGIC or version != SCORES_VERSION:
        raise ProtocolError(f"bad scores header (magic {magic!r}, version {version})")
    if dtype != DTYPE_FLOAT32:
        raise ProtocolError(f"scores dtype code {dtype}, expected float32 ({DTYPE_FLOAT32})")
    if got_seq != seq:
        raise ProtocolError(f"scores belong to request {got_seq}, expected {seq}")
    if (got_rows, got_n, got_vocab) != (rows, n_last, vocab):
        raise ProtocolError(f"scores shape ({got_rows}, {got_n}, {got_vocab}), expected ({rows}, {n_last}, {vocab})")
