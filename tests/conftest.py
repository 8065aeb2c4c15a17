"""Shared fixtures.

`tiny_data`: a small dataset in the official layout, made by the real corpus builder
(`harness.data.corpus.write_corpus`) from pydoc topic texts, in a temporary folder:
a vocab-1024 SentencePiece model, one val shard (~6k tokens) and one train shard
(~80k tokens). Built once per test session in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

TINY_VAL_TEXT_BYTES = 16_000
TINY_TEXT_BYTES = 240_000


@dataclass(frozen=True)
class TinyData:
    data_dir: Path
    dataset_dir: Path  # holds pydocs_val_000000.bin and pydocs_train_000000.bin
    tokenizer_path: Path
    vocab_size: int  # 1024: the byte-table size, even if SentencePiece made fewer pieces
    val_docs: tuple[str, ...]
    train_docs: tuple[str, ...]
    val_tokens: int
    train_tokens: int


def tiny_documents(text_bytes: int = TINY_TEXT_BYTES) -> list[str]:
    """pydoc topic texts in name order, up to about `text_bytes` of UTF-8."""
    from harness.data.corpus import pydoc_topics

    docs, total = [], 0
    for text in pydoc_topics():
        if total >= text_bytes:
            break
        docs.append(text)
        total += len(text.encode("utf-8"))
    return docs


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> TinyData:
    from harness.data.corpus import split_documents, write_corpus

    data_dir = tmp_path_factory.mktemp("tiny_data")
    val_docs, train_docs = split_documents(tiny_documents(), TINY_VAL_TEXT_BYTES)
    info = write_corpus(val_docs, train_docs, data_dir)
    return TinyData(
        data_dir=data_dir,
        dataset_dir=info.dataset_dir,
        tokenizer_path=info.tokenizer_path,
        vocab_size=info.vocab_size,
        val_docs=tuple(val_docs),
        train_docs=tuple(train_docs),
        val_tokens=info.val_tokens,
        train_tokens=info.train_tokens,
    )
