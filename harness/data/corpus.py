"""The embedded corpus: English text that ships with Python, as shards + a tokenizer.

Documents (docs/DATA.md has the full story):
  * every docstring (module, class, function) of the standard library's .py files,
    read by parsing the source with `ast` (nothing is imported or executed), skipping
    test packages and site-packages, cleaned like `inspect.cleandoc`, at least
    MIN_DOC_CHARS long;
  * every pydoc topic text in `pydoc_data.topics`.
They are deduplicated by exact text and put in a fixed order: by the SHA-256 of
their UTF-8 text (so val is a sample of both sources, not one module's docs).
The first documents, up to VAL_TEXT_BYTES of text, are val; the rest are train.
Each document is encoded as [BOS] + tokens, as the challenge does.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import sysconfig
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from harness.atomic import atomic_write_json
from harness.bpb import target_bytes
from harness.data.shards import write_shard
from harness.data.tokenizer import BOS_ID, build_byte_tables, load_tokenizer, train_tokenizer

DEFAULT_DATA_DIR = Path("data")
DATASET = "pydocs_sp1024"
TOKENIZER = "pydocs_1024_bpe"
SHARD_PREFIX = "pydocs"
VOCAB_SIZE = 1024
MIN_DOC_CHARS = 64  # shorter docstrings are mostly "Return self." boilerplate
VAL_TEXT_BYTES = 400_000  # ~150k val tokens: a CPU eval of val takes seconds, not minutes
SKIPPED_DIRS = {"test", "tests", "idle_test", "site-packages"}
# Bump when the extraction or the layout changes, so old caches are rebuilt.
BUILD_VERSION = 1
BUILD_INFO = "build.json"
COUNT_FIELDS = ("vocab_size", "tokenizer_pieces", "val_docs", "train_docs",
                "val_tokens", "train_tokens", "val_bytes", "train_bytes")


@dataclass(frozen=True)
class CorpusInfo:
    dataset_dir: Path
    tokenizer_path: Path
    vocab_size: int  # size of the byte tables / model vocabulary (1024)
    tokenizer_pieces: int  # pieces SentencePiece actually produced (<= vocab_size)
    val_docs: int
    train_docs: int
    val_tokens: int
    train_tokens: int
    val_bytes: int
    train_bytes: int
    cached: bool = False

    def summary(self) -> str:
        state = "reused cached" if self.cached else "built"
        return (
            f"{state} corpus {self.dataset_dir} (tokenizer {self.tokenizer_path}, "
            f"{self.tokenizer_pieces} pieces)\n"
            f"  val:   {self.val_docs} documents, {self.val_tokens} tokens, {self.val_bytes} bytes\n"
            f"  train: {self.train_docs} documents, {self.train_tokens} tokens, {self.train_bytes} bytes"
        )


def stdlib_docstrings(stdlib_dir: Path | None = None) -> Iterator[str]:
    """Docstrings of the stdlib's .py files in sorted path order, by parsing, never importing."""
    root = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(root).parts))
    for path in files:
        try:
            with warnings.catch_warnings():  # e.g. invalid escape sequences in old modules
                warnings.simplefilter("ignore")
                tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            continue  # a file this Python cannot parse holds no text we need
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    yield doc


def pydoc_topics() -> Iterator[str]:
    """The pydoc topic texts (language reference excerpts), by sorted topic name."""
    from pydoc_data.topics import topics  # plain data module: a dict of strings

    for name in sorted(topics):
        yield topics[name]


def collect_documents(stdlib_dir: Path | None = None) -> list[str]:
    """All corpus documents, deduplicated, in the corpus order (SHA-256 of the text)."""
    docs = {}
    for text in (*stdlib_docstrings(stdlib_dir), *pydoc_topics()):
        text = text.replace("\x00", " ").strip()
        if len(text) >= MIN_DOC_CHARS:
            docs[hashlib.sha256(text.encode("utf-8")).digest()] = text
    return [docs[key] for key in sorted(docs)]


def split_documents(docs: Sequence[str], val_text_bytes: int) -> tuple[list[str], list[str]]:
    """The first documents reaching `val_text_bytes` of UTF-8 text -> val, the rest -> train."""
    total = 0
    for i, text in enumerate(docs):
        if total >= val_text_bytes:
            return list(docs[:i]), list(docs[i:])
        total += len(text.encode("utf-8"))
    return list(docs), []


def _encode_split(sp, docs: Sequence[str]) -> np.ndarray:
    pieces = [[BOS_ID] + ids for ids in sp.encode(list(docs), out_type=int)]
    flat = [t for doc in pieces for t in doc]
    return np.asarray(flat, dtype=np.uint16)


def _stream_bytes(tables, tokens: np.ndarray) -> int:
    """UTF-8 bytes the evaluator will count for this stream's targets."""
    if len(tokens) < 2:
        return 0
    return int(target_bytes(tables, tokens[:-1], tokens[1:]).sum())


def write_corpus(
    val_docs: Sequence[str],
    train_docs: Sequence[str],
    data_dir: str | os.PathLike,
    *,
    dataset: str = DATASET,
    tokenizer: str = TOKENIZER,
    prefix: str = SHARD_PREFIX,
    vocab_size: int = VOCAB_SIZE,
) -> CorpusInfo:
    """Train the tokenizer on all documents, write one val and one train shard, and a build record.

    The build record is written last: its presence means the build is complete.
    """
    data_dir = Path(data_dir)
    dataset_dir = data_dir / "datasets" / dataset
    model_path = train_tokenizer([*val_docs, *train_docs], data_dir / "tokenizers" / tokenizer, vocab_size)
    sp = load_tokenizer(model_path)
    tables = build_byte_tables(sp, vocab_size)
    counts = {}
    for split, docs in (("val", val_docs), ("train", train_docs)):
        tokens = _encode_split(sp, docs)
        write_shard(dataset_dir / f"{prefix}_{split}_000000.bin", tokens)
        counts[split] = (len(docs), len(tokens), _stream_bytes(tables, tokens))
    info = CorpusInfo(
        dataset_dir=dataset_dir,
        tokenizer_path=model_path,
        vocab_size=len(tables.base_bytes),
        tokenizer_pieces=int(sp.vocab_size()),
        val_docs=counts["val"][0],
        train_docs=counts["train"][0],
        val_tokens=counts["val"][1],
        train_tokens=counts["train"][1],
        val_bytes=counts["val"][2],
        train_bytes=counts["train"][2],
    )
    record = {k: getattr(info, k) for k in COUNT_FIELDS}
    atomic_write_json(dataset_dir / BUILD_INFO, {"key": _build_key(), **record})
    return info


def _build_key() -> dict:
    """What the cached corpus depends on: our extraction and the Python that supplied the text."""
    return {
        "build_version": BUILD_VERSION,
        "python": sys.version.split()[0],
        "stdlib": sysconfig.get_paths()["stdlib"],
        "min_doc_chars": MIN_DOC_CHARS,
        "val_text_bytes": VAL_TEXT_BYTES,
    }


def _cached(data_dir: Path) -> CorpusInfo | None:
    """The recorded build under `data_dir` if it is complete and made by this builder/Python."""
    dataset_dir = data_dir / "datasets" / DATASET
    tokenizer_path = data_dir / "tokenizers" / f"{TOKENIZER}.model"
    try:
        record = json.loads((dataset_dir / BUILD_INFO).read_text(encoding="utf-8"))
        if record.pop("key") != _build_key():
            return None
        counts = {k: int(record[k]) for k in COUNT_FIELDS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    shards = [dataset_dir / f"{SHARD_PREFIX}_{split}_000000.bin" for split in ("val", "train")]
    if not tokenizer_path.is_file() or not all(p.is_file() for p in shards):
        return None
    return CorpusInfo(dataset_dir=dataset_dir, tokenizer_path=tokenizer_path, cached=True, **counts)


def ensure_embedded(data_dir: str | os.PathLike = DEFAULT_DATA_DIR, quiet: bool = False) -> CorpusInfo:
    """The embedded corpus under `data_dir`, built on first use and reused afterwards."""
    data_dir = Path(data_dir)
    info = _cached(data_dir)
    if info is None:
        start = time.monotonic()
        if not quiet:
            print("collecting stdlib docstrings and pydoc topics ...", file=sys.stderr)
        val_docs, train_docs = split_documents(collect_documents(), VAL_TEXT_BYTES)
        if not quiet:
            print(f"training tokenizer and writing shards ({len(val_docs) + len(train_docs)} "
                  "documents) ...", file=sys.stderr)
        info = write_corpus(val_docs, train_docs, data_dir)
        if not quiet:
            print(f"built in {time.monotonic() - start:.1f} s", file=sys.stderr)
    if not quiet:
        print(info.summary())
    return info
