"""Read a submission's tokenizer files as data, to know what each token id stands for.

The auditor never hands a submission's files to native or pickling loaders, so both
readers here are small pure-Python parsers:

- SentencePiece `.model`: a protobuf `ModelProto`. Only field 1 (the repeated
  pieces: text, score, type) is read; every other field is skipped by wire type.
- TokenMonster binary `.vocab` (used by the Scylla submissions, RULES.md §7): a
  24-byte header, then one record per dictionary entry (length byte, token bytes,
  flag, word count, two 3-byte alternative indexes, 3-byte id, float32 score), then
  256 begin-byte flags. Entries with a negative score are the tokenizer's own
  "delete marker + space" duplicates of another id and are not separate tokens.
  The layout was read off real vocabularies; anything that does not parse exactly
  is refused (`None`), never guessed.

Each reader returns `None` for a file it does not recognise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# SentencePiece piece types (sentencepiece_model.proto)
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6
TM_HEADER = 24
TM_SPECIAL_FLAG = 64
TM_MAX_TOKEN = 40  # TokenMonster refuses longer tokens


@dataclass(frozen=True)
class SentencePieceVocab:
    """Pieces and types of a SentencePiece model, with the query methods that
    `harness.data.tokenizer.build_byte_tables` expects of a processor."""

    pieces: tuple[str, ...]
    types: tuple[int, ...]

    def vocab_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        return self.pieces[i]

    def is_control(self, i: int) -> bool:
        return self.types[i] == SP_CONTROL

    def is_unknown(self, i: int) -> bool:
        return self.types[i] == SP_UNKNOWN

    def is_unused(self, i: int) -> bool:
        return self.types[i] == SP_UNUSED

    def is_byte(self, i: int) -> bool:
        return self.types[i] == SP_BYTE


@dataclass(frozen=True)
class TokenMonsterVocab:
    capcode: int  # 0 none, 1 delete marker only, 2 case markers C/W and delete marker D
    charset: int  # 0 bytes, 1 UTF-8, 2 UTF-16
    tokens: dict[int, bytes]  # id -> token bytes (regular tokens)
    special: frozenset[int]  # ids of special tokens

    def vocab_size(self) -> int:
        return max([*self.tokens, *self.special], default=-1) + 1


class _Truncated(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Truncated
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise _Truncated  # groups (3, 4) do not occur in a ModelProto
        if pos > len(buf) or field == 0:
            raise _Truncated
        yield field, wire, value


def read_sentencepiece(data: bytes) -> SentencePieceVocab | None:
    pieces, types = [], []
    try:
        for field, wire, value in _fields(data):
            if field != 1 or wire != 2:
                continue
            piece, kind = None, SP_NORMAL
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    piece = v.decode("utf-8")
                elif f == 3 and w == 0:
                    kind = v
            if piece is None:
                return None
            pieces.append(piece)
            types.append(kind)
    except (_Truncated, UnicodeDecodeError):
        return None
    if not pieces or any(t not in (1, 2, 3, 4, 5, 6) for t in types):
        return None
    return SentencePieceVocab(tuple(pieces), tuple(types))


def read_tokenmonster(data: bytes) -> TokenMonsterVocab | None:
    if len(data) < TM_HEADER or data[0] > 2 or data[1] > 2:
        return None
    count = int.from_bytes(data[17:20], "little")
    tokens: dict[int, bytes] = {}
    special: set[int] = set()
    pos = TM_HEADER
    for _ in range(count):
        if pos >= len(data):
            return None
        n = data[pos]
        if not 0 < n <= TM_MAX_TOKEN or pos + 1 + n + 15 > len(data):
            return None
        token, rec = data[pos + 1:pos + 1 + n], pos + 1 + n
        flag = data[rec]
        token_id = int.from_bytes(data[rec + 8:rec + 11], "little")
        (score,) = struct.unpack("<f", data[rec + 11:rec + 15])
        pos = rec + 15
        if score < -0.5:
            continue  # a duplicate spelling of another id
        if token_id in tokens or token_id in special:
            return None
        if flag & TM_SPECIAL_FLAG:
            special.add(token_id)
        else:
            tokens[token_id] = token
    if not tokens or len(data) - pos < 256:  # the begin-byte table follows the entries
        return None
    return TokenMonsterVocab(data[0], data[1], tokens, frozenset(special))


def read_tokenizer(path: Path) -> SentencePieceVocab | TokenMonsterVocab | None:
    """The tokenizer in a `.model` / `.vocab` file, or None if it is neither format."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if path.suffix == ".model":
        return read_sentencepiece(data)
    if path.suffix == ".vocab":
        return read_tokenmonster(data)
    return None
