"""Byte tables shipped as data files, checked against the tokenizer shipped with them.

RULES.md §2 (Section V) and §7: BPB divides by the bytes of the text, and the byte
count of a token must come from the tokenizer's piece table: `▁` is one byte counted
through `has_leading_space`, a byte-fallback token is exactly one byte, control and
unknown tokens are none. Submissions that change the tokenizer often ship the table
precomputed (an `.npz` with `base_bytes`, `has_leading_space`, `is_boundary_token`),
so a code rule never sees how it was filled. The Scylla records (#1143, #1184) stored
3 bytes for the 27 byte-fallback tokens, the UTF-8 length of U+FFFD that a byte
decoded with `errors="replace"` turns into, and inflated the denominator by 4.13%.

This check recomputes each token's bytes from the tokenizer next to the table:
- SentencePiece `.model`: the canonical tables exactly
  (`harness.data.tokenizer.build_byte_tables`); every id must agree on all three arrays.
- TokenMonster `.vocab`: the table's `base_bytes + has_leading_space` must equal the
  token's source bytes wherever those are certain: single-byte tokens and tokens
  that are ASCII once the case markers (capcode `C`/`W`) are removed. Tokens with the
  delete marker or with non-ASCII text under a normalizer are left unverified.
A table with no readable tokenizer of its size beside it is reported as unverifiable
(a warning: the reviewer must check it by hand). Files are read as data only
(`numpy.load(allow_pickle=False)`, `auditors.tokenizer_files`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from auditors.model import Finding, RuleInfo
from auditors.tokenizer_files import SentencePieceVocab, TokenMonsterVocab, read_tokenizer

RULE = RuleInfo("shipped-byte-table", "tokenizer_byte_miscount",
                "byte table shipped as data disagrees with the tokenizer",
                "RULES.md §2 Section V, §7 (#1143, #1184 byte-fallback tokens at 3 bytes; #1698)")
TABLE_SUFFIXES = (".npz",)
TOKENIZER_SUFFIXES = (".model", ".vocab")
MAX_TABLE_FILE = 64 * 2**20  # a byte table is a few KB; larger archives are weights
CASE_MARKERS = {2: b"CW", 1: b""}
DELETE_MARKER = {2: 0x44, 1: 0x7F}  # capcode "D" / the no-capcode delete byte
SHOW = 5


def _small(path: Path) -> bool:
    try:
        return path.stat().st_size <= MAX_TABLE_FILE
    except OSError:
        return False


def read_table(path: Path) -> dict | None:
    """Arrays of a byte-table archive: base_bytes and, if present, the two flag arrays."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "base_bytes" not in data.files:
                return None
            table = {"base_bytes": np.asarray(data["base_bytes"]).astype(np.int64).reshape(-1)}
            for name in ("has_leading_space", "is_boundary_token", "is_boundary"):
                if name in data.files:
                    table[name.replace("_token", "")] = np.asarray(data[name]).astype(bool).reshape(-1)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return table


def _source_bytes(vocab: TokenMonsterVocab, token: bytes) -> int | None:
    """Bytes of text a TokenMonster token stands for, where that is certain."""
    if vocab.capcode and DELETE_MARKER[vocab.capcode] in token:
        return None  # the delete marker removes a neighbouring space: context-dependent
    if len(token) == 1 and vocab.charset != 2:
        return 0 if token in CASE_MARKERS.get(vocab.capcode, b"") else 1
    text = bytes(b for b in token if b not in CASE_MARKERS.get(vocab.capcode, b""))
    return len(text) if vocab.charset == 1 and text.isascii() else None


def disagreements(table: dict, tok) -> tuple[list[tuple[int, str, int, int]], int]:
    """[(id, token text, table bytes, tokenizer bytes)], number of ids compared."""
    base = table["base_bytes"]
    space = table.get("has_leading_space", np.zeros_like(base, dtype=bool))
    bad, compared = [], 0
    if isinstance(tok, SentencePieceVocab):
        from harness.data.tokenizer import build_byte_tables

        canon = build_byte_tables(tok, tok.vocab_size())
        boundary = table.get("is_boundary")
        for i in range(min(tok.vocab_size(), len(base))):
            compared += 1
            same = base[i] == canon.base_bytes[i] and (i >= len(space) or space[i] == canon.has_leading_space[i])
            if boundary is not None and i < len(boundary):
                same = same and boundary[i] == canon.is_boundary[i]
            if not same:
                got = int(base[i]) + int(i < len(space) and space[i])
                want = int(canon.base_bytes[i]) + int(canon.has_leading_space[i])
                bad.append((i, tok.id_to_piece(i), got, want))
        return bad, compared
    for i, token in sorted(tok.tokens.items()):
        want = _source_bytes(tok, token)
        if want is None or i >= len(base):
            continue
        compared += 1
        got = int(base[i]) + int(i < len(space) and space[i])
        if got != want:
            bad.append((i, repr(token)[1:], got, want))
    return bad, compared


def _message(name: str, tok_name: str, bad, compared: int) -> str:
    shown = ", ".join(f"id {i} {text}: table {got}, tokenizer {want}" for i, text, got, want in bad[:SHOW])
    more = f" and {len(bad) - SHOW} more" if len(bad) > SHOW else ""
    replaced = sum(1 for _, _, got, want in bad if got == 3 and want == 1)
    why = (f"; {replaced} single-byte token(s) counted as 3 bytes, the UTF-8 length of U+FFFD "
           "(a byte decoded with errors='replace')") if replaced else ""
    excess = sum(got - want for _, _, got, want in bad)
    return (f"{len(bad)} of {compared} token ids in {name} disagree with {tok_name} ({shown}{more}){why}; "
            f"counted once each, those ids carry {excess:+d} bytes")


def check_shipped_tables(root: Path) -> list[Finding]:
    """Findings for every byte table under `root` (a folder)."""
    from auditors.engine import collect_code

    files = [p for p in collect_code(root, TABLE_SUFFIXES + TOKENIZER_SUFFIXES) if _small(p)]
    tables = [(p, t) for p in files if p.suffix in TABLE_SUFFIXES and (t := read_table(p)) is not None]
    if not tables:
        return []
    tokenizers = [(p, t) for p in files if p.suffix in TOKENIZER_SUFFIXES and (t := read_tokenizer(p)) is not None]
    out = []
    for path, table in tables:
        name = str(path.relative_to(root))
        size = len(table["base_bytes"])
        # a table may be padded past the tokenizer (to the model's vocabulary), never shorter
        matching = [(p, t) for p, t in tokenizers if t.vocab_size() <= size and t.vocab_size() >= 0.5 * size]
        if not matching:
            out.append(Finding(RULE.id, RULE.tag, "warning", "medium", "active", None, name, 1,
                               f"byte table {name} ({size} ids) has no readable tokenizer of its size beside it: "
                               "its byte counts cannot be verified", RULE.reference, ""))
            continue
        # with several candidates, the table belongs to the tokenizer it agrees with best
        (bad, compared), tok_path = min(((disagreements(table, t), p) for p, t in matching),
                                        key=lambda r: (len(r[0][0]), -r[0][1]))
        if bad:
            out.append(Finding(RULE.id, RULE.tag, "error", "high", "active", None, name, 1,
                               _message(name, str(tok_path.relative_to(root)), bad, compared), RULE.reference, ""))
    return out
