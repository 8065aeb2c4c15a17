"""Tokenizer options and the byte tables: the byte total of tokens equals the decoded UTF-8 length."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from harness.bpb import target_bytes
from harness.data.tokenizer import (
    BOS_ID,
    LEADING_SPACE,
    build_byte_tables,
    load_tokenizer,
    train_tokenizer,
)
from harness.errors import BadInput


@pytest.fixture(scope="module")
def sp_tables(tiny_data):
    sp = load_tokenizer(tiny_data.tokenizer_path)
    return sp, build_byte_tables(sp, tiny_data.vocab_size)


def _stream_bytes(tables, stream) -> int:
    stream = np.asarray(stream)
    return int(target_bytes(tables, stream[:-1], stream[1:]).sum())


# ASCII, digits, whitespace runs, accented and CJK letters, NFKC-changed characters
# (ligatures, full-width, circled digits) and emoji that only byte fallback can spell.
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcdefghij XYZ0123456789.,;:()_-\n\t  ")),
        st.sampled_from(list("éüßñçœ中文字日本語ﬁﬂＡ１①²　\u00a0\u2581")),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_byte_total_equals_decoded_utf8_length(sp_tables, text):
    sp, tables = sp_tables
    ids = sp.encode(text, out_type=int)
    decoded = sp.decode(ids)  # nmt_nfkc may have changed the text: compare to what decodes
    assert _stream_bytes(tables, [BOS_ID, *ids]) == len(decoded.encode("utf-8"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(texts, min_size=1, max_size=4))
def test_bos_separated_documents_add_up(sp_tables, docs):
    sp, tables = sp_tables
    stream, expected = [], 0
    for doc in docs:
        ids = sp.encode(doc, out_type=int)
        stream += [BOS_ID, *ids]
        expected += len(sp.decode(ids).encode("utf-8"))
    assert _stream_bytes(tables, [BOS_ID, *stream]) == expected  # a BOS target is 0 bytes


def test_leading_space_counts_unless_after_boundary(sp_tables):
    sp, tables = sp_tables
    spaced = next(i for i in range(sp.vocab_size()) if sp.id_to_piece(i).startswith(LEADING_SPACE)
                  and len(sp.id_to_piece(i)) > 1)
    plain = next(i for i in range(sp.vocab_size()) if sp.id_to_piece(i).isalpha())
    base = len(sp.id_to_piece(spaced)[1:].encode("utf-8"))
    assert tables.base_bytes[spaced] == base and tables.has_leading_space[spaced]
    assert _stream_bytes(tables, [plain, spaced]) == base + 1
    for boundary in (0, 1, 2, 3):  # pad, bos, eos, unk
        assert _stream_bytes(tables, [boundary, spaced]) == base
    assert _stream_bytes(tables, [plain, BOS_ID]) == 0


def test_tables_follow_the_spec(sp_tables, tiny_data):
    sp, tables = sp_tables
    assert tables.size == tiny_data.vocab_size == 1024
    assert [sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()] == [0, 1, 2, 3]
    for i in range(4):
        assert tables.is_boundary[i] and tables.base_bytes[i] == 0 and not tables.has_leading_space[i]
    byte_ids = [i for i in range(sp.vocab_size()) if sp.is_byte(i)]
    assert len(byte_ids) == 256  # byte fallback
    assert all(tables.base_bytes[i] == 1 and not tables.is_boundary[i] for i in byte_ids)
    assert not tables.is_boundary[4:sp.vocab_size()].any()


def test_trainer_options_show_in_behaviour(sp_tables):
    sp, _ = sp_tables
    assert [sp.id_to_piece(i) for i in sp.encode("2026", out_type=int)] == list("2026")  # split digits
    assert not sp.id_to_piece(sp.encode("the", out_type=int)[0]).startswith(LEADING_SPACE)  # no dummy prefix
    assert all(sp.is_byte(i) for i in sp.encode("\U0001F600", out_type=int))  # byte fallback
    assert sp.decode(sp.encode("ﬁ１", out_type=int)) == "fi1"  # NFKC normalization


def test_small_text_gives_fewer_pieces_but_full_size_tables(tmp_path):
    model = train_tokenizer(["tiny text, tiny text, tiny text."] * 20, tmp_path / "small", vocab_size=1024)
    sp = load_tokenizer(model)
    assert sp.vocab_size() < 1024  # hard_vocab_limit=False
    tables = build_byte_tables(sp, 1024)
    assert tables.size == 1024
    assert tables.is_boundary[sp.vocab_size():].all() and not tables.base_bytes[sp.vocab_size():].any()


def test_training_is_deterministic(tmp_path, tiny_data):
    docs = list(tiny_data.train_docs[:10])
    a = train_tokenizer(docs, tmp_path / "a").read_bytes()
    b = train_tokenizer(docs, tmp_path / "b").read_bytes()
    assert a == b


@pytest.mark.parametrize("content", [b"", b"not a model", b"\x00" * 64])
def test_bad_model_file_is_bad_input(tmp_path, content):
    path = tmp_path / "bad.model"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=str(path)):
        load_tokenizer(path)
    with pytest.raises(BadInput, match="not found"):
        load_tokenizer(tmp_path / "absent.model")
