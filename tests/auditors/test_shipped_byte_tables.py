"""Byte tables shipped as .npz, checked against the tokenizer beside them (RULES.md §7).

Tables and vocabularies are made here: a SentencePiece model trained on the tiny
corpus, and TokenMonster-layout vocabularies written by `write_tokenmonster` below."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditors import audit_path
from auditors.shipped_byte_tables import check_shipped_tables, disagreements, read_table
from auditors.tokenizer_files import read_sentencepiece, read_tokenmonster
from harness.data.tokenizer import build_byte_tables, load_tokenizer


def write_tokenmonster(tokens: dict[int, bytes], *, capcode=2, charset=1, special=(), duplicates=()) -> bytes:
    """A vocabulary in the TokenMonster binary layout that `read_tokenmonster` documents.
    Entries are written sorted by bytes, as the tokenizer writes them."""
    entries = [(tok, 64 if i in special else 0, i, 1.0) for i, tok in tokens.items()]
    entries += [(tok, 0, i, -1.0) for i, tok in duplicates]  # "D " + token spellings of an id
    entries.sort(key=lambda e: e[0])
    size = max(tokens) + 1
    head = bytes([capcode, charset, 0, 1, 0, 0, 0, 0]) + b"\xff\xff\xff" + size.to_bytes(3, "little") * 2
    head += len(entries).to_bytes(3, "little") + b"\xff\xff\xff" + bytes([max(len(t) for t in tokens.values())])
    body = b"".join(bytes([len(tok)]) + tok + bytes([flag, 0]) + b"\xff" * 6 + i.to_bytes(3, "little")
                    + struct.pack("<f", score) for tok, flag, i, score in entries)
    return head + body + bytes(256) + b"\x00\x00\x00"


def tm_tokens() -> dict[int, bytes]:
    """Single bytes (ASCII, case markers, raw high bytes), then multi-byte words."""
    singles = [bytes([b]) for b in b"\t\n !,.CDW" + b"abcdefghijklmnopqrstuvwxyz"] + [bytes([b]) for b in range(0x80, 0x9B)]
    words = [b" the", b" and", b"ing", b"Ca", b"W the", b"\xc3\xa9t\xc3\xa9", b"D the"]
    return {i: t for i, t in enumerate(singles + words)}


def canonical_tm_table(tokens: dict[int, bytes]) -> dict:
    """What a correct exporter writes: source bytes of each token (markers count none)."""
    base = np.array([len(t) - sum(t.count(m) for m in b"CWD") for _, t in sorted(tokens.items())], dtype=np.int16)
    return {"base_bytes": base, "has_leading_space": np.zeros(len(base), bool), "is_boundary_token": np.zeros(len(base), bool)}


@pytest.fixture(scope="module")
def sp_model(tiny_data):
    return tiny_data.tokenizer_path


def test_sentencepiece_reader_matches_the_library(sp_model):
    sp = load_tokenizer(sp_model)
    vocab = read_sentencepiece(sp_model.read_bytes())
    assert vocab.vocab_size() == sp.vocab_size()
    for i in range(sp.vocab_size()):
        assert vocab.id_to_piece(i) == sp.id_to_piece(i)
        assert (vocab.is_byte(i), vocab.is_control(i), vocab.is_unknown(i), vocab.is_unused(i)) == (
            sp.is_byte(i), sp.is_control(i), sp.is_unknown(i), sp.is_unused(i))
    assert sum(vocab.is_byte(i) for i in range(vocab.vocab_size())) == 256  # byte fallback is on


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_readers_refuse_garbage_without_raising(data):
    assert read_sentencepiece(data) is None or read_sentencepiece(data).vocab_size() > 0
    assert read_tokenmonster(data) is None or read_tokenmonster(data).tokens


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=40), st.booleans(), min_size=1, max_size=40))
def test_tokenmonster_round_trip(spec):
    tokens = {i: tok for i, tok in enumerate(spec)}
    special = {i for i, tok in enumerate(spec) if spec[tok] and i > 0}
    dups = [(i, b"D " + tok[:38]) for i, tok in tokens.items() if i % 3 == 0 and b"D " + tok[:38] not in spec]
    vocab = read_tokenmonster(write_tokenmonster(tokens, special=special, duplicates=dups))
    assert vocab.tokens == {i: t for i, t in tokens.items() if i not in special}
    assert vocab.special == special
    assert read_tokenmonster(write_tokenmonster(tokens)[:-200]) is None  # truncated: refused


def test_canonical_sentencepiece_table_is_clean(sp_model, tmp_path):
    tables = build_byte_tables(load_tokenizer(sp_model), 1024)
    shutil.copy(sp_model, tmp_path / "tok.model")
    np.savez(tmp_path / "meta.npz", base_bytes=tables.base_bytes, has_leading_space=tables.has_leading_space,
             is_boundary_token=tables.is_boundary)
    assert check_shipped_tables(tmp_path) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_every_changed_id_is_reported(sp_model, data):
    sp = read_sentencepiece(sp_model.read_bytes())
    canon = build_byte_tables(sp, sp.vocab_size())
    ids = data.draw(st.sets(st.integers(0, sp.vocab_size() - 1), max_size=20))
    base, space = canon.base_bytes.astype(np.int64).copy(), canon.has_leading_space.copy()
    for i in ids:
        if data.draw(st.booleans()):
            base[i] += data.draw(st.sampled_from([-1, 1, 2]))
        else:
            space[i] = ~space[i]
    bad, compared = disagreements({"base_bytes": base, "has_leading_space": space, "is_boundary": canon.is_boundary}, sp)
    assert compared == sp.vocab_size()
    assert {i for i, *_ in bad} == ids


def test_byte_fallback_at_three_bytes_is_an_error(sp_model, tmp_path):
    sp = load_tokenizer(sp_model)
    tables = build_byte_tables(sp, 1024)
    byte_ids = [i for i in range(sp.vocab_size()) if sp.is_byte(i)]
    base = tables.base_bytes.copy()
    base[byte_ids[128:]] = 3  # the high bytes, decoded with errors="replace" by the exporter
    shutil.copy(sp_model, tmp_path / "tok.model")
    np.savez(tmp_path / "meta.npz", base_bytes=base, has_leading_space=tables.has_leading_space)
    (finding,) = check_shipped_tables(tmp_path)
    assert (finding.severity, finding.tag, finding.path) == ("error", "tokenizer_byte_miscount", "meta.npz")
    assert "128 of 1024" in finding.message and "U+FFFD" in finding.message and "+256 bytes" in finding.message


def test_leading_space_counted_twice_is_an_error(sp_model, tmp_path):
    tables = build_byte_tables(load_tokenizer(sp_model), 1024)
    shutil.copy(sp_model, tmp_path / "tok.model")
    np.savez(tmp_path / "meta.npz", base_bytes=tables.base_bytes + tables.has_leading_space,
             has_leading_space=tables.has_leading_space)
    (finding,) = check_shipped_tables(tmp_path)
    assert f"{int(tables.has_leading_space.sum())} of 1024" in finding.message
    assert "U+FFFD" not in finding.message


def test_tokenmonster_table_checked_where_bytes_are_certain(tmp_path):
    tokens = tm_tokens()
    (tmp_path / "candidate.vocab").write_bytes(write_tokenmonster(tokens))
    good = canonical_tm_table(tokens)
    np.savez(tmp_path / "candidate.meta.npz", **good)
    assert check_shipped_tables(tmp_path) == []

    high = [i for i, t in tokens.items() if len(t) == 1 and t[0] >= 0x80]
    unsure = [i for i, t in tokens.items()
              if b"D" in t or (len(t) > 1 and not t.replace(b"C", b"").replace(b"W", b"").isascii())]
    bad = dict(good, base_bytes=good["base_bytes"].copy())
    bad["base_bytes"][high] = 3
    bad["base_bytes"][unsure] += 5  # no certain byte count: never judged
    np.savez(tmp_path / "candidate.meta.npz", **bad)
    (finding,) = check_shipped_tables(tmp_path)
    assert finding.severity == "error"
    assert f"{len(high)} of {len(tokens) - len(unsure)} token ids" in finding.message
    assert f"{len(high)} single-byte token(s) counted as 3 bytes" in finding.message


def test_table_without_tokenizer_is_unverifiable(tmp_path):
    np.savez(tmp_path / "meta.npz", base_bytes=np.ones(1024, np.int16))
    (finding,) = check_shipped_tables(tmp_path)
    assert finding.severity == "warning" and "cannot be verified" in finding.message


def test_archives_are_read_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    np.savez(tmp_path / "meta.npz", base_bytes=np.array([Touch(str(marker))], dtype=object))
    np.savez(tmp_path / "weights.npz", w=np.zeros(3))
    assert read_table(tmp_path / "meta.npz") is None and read_table(tmp_path / "weights.npz") is None
    assert not marker.exists()
    assert check_shipped_tables(tmp_path) == []


class Touch:
    """Unpickling this object creates a file: a canary for loaders that unpickle."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_audit_reports_the_table_as_an_active_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "record"
    folder.mkdir()
    tokens = tm_tokens()
    (folder / "candidate.vocab").write_bytes(write_tokenmonster(tokens))
    table = canonical_tm_table(tokens)
    table["base_bytes"][[i for i, t in tokens.items() if len(t) == 1 and t[0] >= 0x80]] = 3
    np.savez(folder / "candidate.meta.npz", **table)
    (folder / "train_gpt.py").write_text("print('ok')\n")
    report = audit_path(folder)
    assert [f.rule for f in report.errors] == ["shipped-byte-table"]
