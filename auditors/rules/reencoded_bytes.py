"""Bytes turned into text one byte per character, then counted as UTF-8 (RULES.md §2
Section V, §7: a byte-fallback token is exactly one byte).

Rendering a byte-fallback piece `<0xE2>` as the character of that byte
(`bytes([v]).decode("latin-1")`) and counting the piece's bytes as
`len(text.encode("utf-8"))` gives every byte from 0x80 up two bytes: the UTF-8 encoding
of U+0080..U+00FF takes two. Non-ASCII text, which is what byte fallback encodes, is then
over-counted, and the BPB denominator grows. A self-check on ASCII sentences passes. The
rule flags a UTF-8 length taken of text decoded as Latin-1 (or another one-byte-per-character
codec), inline or through a helper that returns such text in one of its branches, unless the
counting function sets byte tokens aside first (`if sp.is_byte(i): ...; continue`). Counting
`len(raw_bytes)`, or encoding back with the same one-byte codec, is exact.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import ctx_of, raw

RULE = RuleInfo("reencoded-bytes", "tokenizer_byte_miscount",
                "bytes decoded one per character (Latin-1) and counted as UTF-8",
                "RULES.md §2 Section V, §7 (a byte-fallback token is one byte)")

_ONE_BYTE = {"latin-1", "latin1", "latin_1", "iso-8859-1", "iso8859-1", "l1", "cp1252", "windows-1252"}


def check(m):
    decodes = [c for c in m.nodes_of(ast.Call) if _one_byte_decode(c)]
    if not decodes:
        return []
    helpers = {f.name for f in m.functions.values() if f.qualname != "<module>"
               and any(r.value is not None and any(n in decodes for n in lb.walk(r.value)) for r in m.own_returns(f))}
    out = []
    for f in m.functions.values():
        if _skips_byte_tokens(m, f):
            continue  # (`if sp.is_byte(i): nb[i] = 1; continue`: no byte piece reaches the count)
        texts = {t.id for st in m.under(f, m.nodes_of(ast.Assign)) if _decoded(st.value, decodes, helpers)
                 for t in st.targets if type(t) is ast.Name}
        for c in m.under(f, m.nodes_of(ast.Call)):
            if lb.call_name(c.func) != "len" or len(c.args) != 1:
                continue
            enc = c.args[0]
            if not (type(enc) is ast.Call and type(enc.func) is ast.Attribute and enc.func.attr == "encode" and _utf8(enc)):
                continue
            text = enc.func.value
            if _decoded(text, decodes, helpers) or (type(text) is ast.Name and text.id in texts):
                st = next((s for s in m.under(f, m.nodes_of(ast.Assign)) if s.lineno <= c.lineno <= s.end_lineno), None)
                out.append(raw(RULE, f, c, ctx_of(f, st) if st is not None else None, "error", "high",
                               f"`{lb.src(c)}` counts as UTF-8 text that was decoded one byte per character "
                               "(Latin-1): each byte from 0x80 up is counted twice"))
    return out


def _one_byte_decode(c: ast.Call) -> bool:
    if not (type(c.func) is ast.Attribute and c.func.attr == "decode"):
        return False
    codec = c.args[0] if c.args else next((k.value for k in c.keywords if k.arg == "encoding"), None)
    return type(codec) is ast.Constant and isinstance(codec.value, str) and codec.value.lower() in _ONE_BYTE


def _utf8(enc: ast.Call) -> bool:
    """`.encode()` or `.encode("utf-8")`."""
    codec = enc.args[0] if enc.args else next((k.value for k in enc.keywords if k.arg == "encoding"), None)
    return codec is None or (type(codec) is ast.Constant and str(codec.value).lower().replace("_", "-") in ("utf-8", "utf8"))


def _decoded(e, decodes: list, helpers: set) -> bool:
    """e is such a decode, or a call of a helper that returns one."""
    return e in decodes or (type(e) is ast.Call and lb.call_name(e.func) in helpers)


def _skips_byte_tokens(m, f) -> bool:
    """f sets byte-fallback tokens aside before it counts: an `if` testing `is_byte` whose body
    ends the iteration (`continue`)."""
    return any(any(type(c) is ast.Call and lb.call_name(c.func) == "is_byte" for c in lb.walk(n.test))
               and n.body and type(n.body[-1]) is ast.Continue for n in m.under(f, m.nodes_of(ast.If)))
