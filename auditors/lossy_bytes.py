"""Byte-fallback tokens sized from text decoded out of their byte (RULES.md §2 Section V).

A byte-fallback piece `<0xNN>` stands for exactly one byte. Turning that byte into text
before sizing it miscounts every byte from 0x80 up: `decode("utf-8", errors="replace")`
gives U+FFFD (3 UTF-8 bytes), `errors="ignore"` gives nothing, a one-byte charset such as
Latin-1 gives a character of 2 UTF-8 bytes. Checked for the byte-table rule in the
functions that read pieces; text kept beside the byte count (for features) sizes nothing.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import piece_tables as pt
from auditors.rules import guards_of, raw


def _sized_text(f, branch: ast.If, call: ast.Call) -> bool:
    """The decoded text is what gets sized: the branch returns it alone (the caller measures
    the text it gets), or binds it to a name whose length the function takes (`len(t)`,
    `len(t.encode())`). Text kept beside the byte count (`return bs, bs.decode(...)`,
    `lens[i] = len(bs)`) sizes nothing."""
    for st in branch.body:
        if type(st) is ast.Return and st.value is call:
            return True
        if type(st) is ast.Assign and st.value is call and len(st.targets) == 1 and type(st.targets[0]) is ast.Name:
            name = st.targets[0].id
            return any(type(n) is ast.Call and lb.call_name(n.func) == "len" and n.args and any(
                type(x) is ast.Name and x.id == name for x in lb.walk(n.args[0])) for n in f.nodes)
    return False


_LOSSY = {"replace", "ignore", "backslashreplace", "xmlcharrefreplace", "namereplace"}
_ONE_BYTE_CHARSETS = {"latin-1", "latin1", "iso-8859-1", "iso8859-1", "cp1252", "windows-1252"}


def byte_decoded_lossily(m, functions, rule) -> list:
    """A byte-fallback token's byte turned into text before it is sized: `bytes([b]).decode(
    "utf-8", errors="replace")` gives U+FFFD (3 bytes) for 0x80-0xFF, `errors="ignore"` gives
    nothing, a one-byte charset (`decode("latin-1")`) gives a character of 2 UTF-8 bytes. The
    token is exactly 1 byte whatever its value."""
    out = []
    for f in functions:
        for b in m.under(f, m.nodes_of(ast.If)):
            if not pt.calls(b.test, "is_byte"):
                continue
            for c in (n for st in b.body for n in lb.walk(st) if type(n) is ast.Call and lb.call_name(n.func) == "decode"
                      and _sized_text(f, b, n)):
                given = [*c.args, *(k.value for k in c.keywords if k.arg in ("encoding", "errors"))]
                said = {str(a.value).lower() for a in given if type(a) is ast.Constant}
                if said & _LOSSY or said & _ONE_BYTE_CHARSETS:
                    out.append(raw(rule, f, c, guards_of(f, c.lineno), "error", "high",
                                   f"a byte-fallback token's byte is decoded to text (`{lb.src(c)}`): bytes 0x80-0xFF "
                                   "become U+FFFD (3 bytes), nothing, or a 2-byte character when the text is sized; "
                                   "the token is exactly 1 byte"))
    return out
