"""Embedded corpus: extraction without imports, fixed order, determinism, disjoint splits, cache."""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

import numpy as np

from harness.cli import main
from harness.data import corpus
from harness.data.corpus import (
    MIN_DOC_CHARS,
    collect_documents,
    ensure_embedded,
    split_documents,
    write_corpus,
)
from harness.data.shards import read_shard
from harness.data.tokenizer import BOS_ID, load_tokenizer

# A real slice of the stdlib: small enough to build twice in a test, same code path as the full build.
STDLIB_SLICE = Path(sysconfig.get_paths()["stdlib"]) / "json"


def test_docstrings_are_read_by_parsing_never_importing(tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "mod.py").write_text(
        f'"""Module text that is long enough to be kept as one document of the corpus."""\n'
        f"open({str(marker)!r}, 'w').close()\n"
        "class K:\n"
        '    """Class text that is long enough to be kept as one document of the corpus."""\n'
        "    async def f(self):\n"
        '        """Method text that is long enough to be kept as one document, too."""\n'
        "def g():\n"
        '    """short"""\n'
    )
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text('"""Test package text, long enough but skipped as a test."""\n')
    (tmp_path / "broken.py").write_text("def (:\n")  # unparsable files are skipped
    (tmp_path / "copy.py").write_text((tmp_path / "mod.py").read_text())  # duplicates kept once
    docs = collect_documents(tmp_path)
    assert not marker.exists()
    mine = [d for d in docs if "long enough" in d]
    assert sorted(d.split()[0] for d in mine) == ["Class", "Method", "Module"]  # once each
    assert "short" not in docs


def test_documents_are_deduplicated_in_hash_order():
    docs = collect_documents(STDLIB_SLICE)
    from pydoc_data.topics import topics

    assert len(docs) == len(set(docs)) > len(topics)  # pydoc topics + the json package's docstrings
    assert any("JSON" in d for d in docs)
    keys = [hashlib.sha256(d.encode("utf-8")).digest() for d in docs]
    assert keys == sorted(keys)
    assert all(len(d) >= MIN_DOC_CHARS and d == d.strip() for d in docs)


def test_split_takes_first_documents_up_to_the_val_budget():
    docs = ["a" * 10, "b" * 10, "c" * 10, "d" * 10]
    assert split_documents(docs, 15) == (docs[:2], docs[2:])
    assert split_documents(docs, 0) == ([], docs)
    assert split_documents(docs, 1000) == (docs, [])


def _build(data_dir: Path):
    val, train = split_documents(collect_documents(STDLIB_SLICE), 20_000)
    return val, train, write_corpus(val, train, data_dir)


def test_build_is_deterministic_and_splits_are_disjoint(tmp_path):
    val, train, info = _build(tmp_path / "a")
    _, _, _ = _build(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 4  # val shard, train shard, build record, tokenizer
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert val and train and not set(val) & set(train)

    sp = load_tokenizer(info.tokenizer_path)
    for split, docs in (("val", val), ("train", train)):
        tokens = read_shard(info.dataset_dir / f"pydocs_{split}_000000.bin", info.vocab_size)
        assert tokens[0] == BOS_ID
        bounds = np.flatnonzero(tokens == BOS_ID).tolist() + [len(tokens)]
        decoded = [sp.decode(tokens[a + 1 : b].tolist()) for a, b in zip(bounds, bounds[1:])]
        assert decoded == [sp.decode(sp.encode(d)) for d in docs]
        assert len(tokens) == getattr(info, f"{split}_tokens")
        assert getattr(info, f"{split}_bytes") == sum(len(d.encode("utf-8")) for d in decoded)


def test_ensure_embedded_builds_once_then_reuses(tmp_path, monkeypatch, capsys):
    calls = []

    def few_documents():
        calls.append(1)
        return collect_documents(STDLIB_SLICE)

    monkeypatch.setattr(corpus, "collect_documents", few_documents)
    first = ensure_embedded(tmp_path)
    assert not first.cached and "built corpus" in capsys.readouterr().out
    assert main(["data", "build", "--data-dir", str(tmp_path)]) == 0
    assert "reused cached corpus" in capsys.readouterr().out and len(calls) == 1
    second = ensure_embedded(tmp_path, quiet=True)
    assert second.cached and second.val_tokens == first.val_tokens and second.val_docs == first.val_docs
    (second.dataset_dir / "pydocs_train_000000.bin").unlink()  # an incomplete cache is rebuilt
    assert not ensure_embedded(tmp_path, quiet=True).cached and len(calls) == 2
