"""SentencePiece tokenizer: training with the challenge's options, loading, byte tables.

The byte tables are what BPB is measured against (PR940_SPEC.md s.2.1); they are
always rebuilt from the .model file, never stored.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from harness.atomic import atomic_write_bytes
from harness.errors import BadInput

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
LEADING_SPACE = "\u2581"  # SentencePiece's visible space, "▁"

# PR940_SPEC.md s.1.5, the challenge's trainer options.
CHALLENGE_TRAINER_OPTIONS = dict(
    model_type="bpe",
    character_coverage=0.999,
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="nmt_nfkc",
    add_dummy_prefix=False,
    pad_id=PAD_ID,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    unk_id=UNK_ID,
    hard_vocab_limit=False,
)
# Ours, for byte-identical rebuilds: one thread, every sentence, no sampling order.
DETERMINISM_OPTIONS = dict(num_threads=1, input_sentence_size=0, shuffle_input_sentence=False)


def training_sentences(texts: Iterable[str]) -> Iterator[str]:
    """The trainer's view of each text, as the challenge prepares it: NUL -> space, stripped, non-empty."""
    for text in texts:
        text = text.replace("\x00", " ").strip()
        if text:
            yield text


def train_tokenizer(texts: Iterable[str], model_prefix: str | os.PathLike, vocab_size: int = 1024) -> Path:
    """Train a BPE model on `texts`; write `<model_prefix>.model` atomically and return its path.

    With hard_vocab_limit=False a small text may yield fewer than `vocab_size` pieces;
    the byte tables are still `vocab_size` long (unused ids are boundaries with 0 bytes).
    """
    import sentencepiece as spm

    model_path = Path(f"{model_prefix}.model")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=training_sentences(texts),
            model_writer=model,
            vocab_size=vocab_size,
            minloglevel=2,  # quiet: only errors
            **CHALLENGE_TRAINER_OPTIONS,
            **DETERMINISM_OPTIONS,
        )
    except RuntimeError as e:
        raise BadInput(f"{model_path}: SentencePiece training failed: {e}") from None
    return atomic_write_bytes(model_path, model.getvalue())


def load_tokenizer(path: str | os.PathLike):
    """A SentencePieceProcessor for `path`; BadInput naming the file if it is not a model."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: tokenizer model not found")
    sp = spm.SentencePieceProcessor()
    try:
        sp.load(str(path))
    except (RuntimeError, OSError) as e:
        raise BadInput(f"{path}: not a SentencePiece model ({str(e).splitlines()[0]})") from None
    return sp


@dataclass(frozen=True)
class ByteTables:
    """Per-token-id UTF-8 byte accounting (PR940_SPEC.md s.2.1)."""

    base_bytes: np.ndarray  # int16[V]: bytes of the piece without its leading "▁"
    has_leading_space: np.ndarray  # bool[V]: piece starts with "▁" (one more byte, see bpb.py)
    is_boundary: np.ndarray  # bool[V]: control/unknown/unused ids: after them no space is counted

    @property
    def size(self) -> int:
        return len(self.base_bytes)


def build_byte_tables(sp, vocab_size: int = 1024) -> ByteTables:
    """Tables of size max(sp vocab, vocab_size), filled exactly as the challenge fills them."""
    sp_vocab = int(sp.vocab_size())
    size = max(sp_vocab, vocab_size)
    base_bytes = np.zeros(size, dtype=np.int16)
    has_leading_space = np.zeros(size, dtype=np.bool_)
    is_boundary = np.ones(size, dtype=np.bool_)
    for token_id in range(sp_vocab):
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_unused(token_id):
            continue
        is_boundary[token_id] = False
        if sp.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = sp.id_to_piece(token_id)
        if piece.startswith(LEADING_SPACE):
            has_leading_space[token_id] = True
            piece = piece[1:]
        base_bytes[token_id] = len(piece.encode("utf-8"))
    return ByteTables(base_bytes, has_leading_space, is_boundary)
