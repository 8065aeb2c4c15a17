"""The bare '▁' piece sized by its marker (RULES.md §2 V, byte accounting).

A byte table strips the leading '▁' from a piece and counts the rest; the space it stands
for is added as one byte by the leading-space rule. For the piece that is *only* the marker
the rest is empty, and a fallback to the whole piece,

    body = (text[1:] if text.startswith("▁") else text) or text

sizes it as the three UTF-8 bytes of U+2581; with the space byte on top that token is
charged 4 bytes instead of 1. It is among the most frequent tokens (the space before
every number under split digits), so the byte total, the BPB denominator, is inflated.
Data flow: in a module that reads sentencepiece pieces, an `a or b` whose first operand
strips the marker from b (a slice from 1, lstrip, removeprefix, replace by nothing) and
whose fallback is b itself.
Legal counterpart: `text[1:]` (or `removeprefix`) with no fallback: the bare marker is
0 bytes plus the space byte.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import piece_tables as pt
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("bare-marker-bytes", "tokenizer_byte_miscount",
                "the bare '▁' piece counted by the bytes of its marker", "RULES.md §2 V (byte accounting)")


def check(m):
    if not any(type(n.func) is ast.Attribute and n.func.attr in ("id_to_piece", "IdToPiece") for n in m.nodes_of(ast.Call)):
        return []
    out = []
    for f in m.functions.values():
        for node in m.under(f, m.nodes_of(ast.BoolOp)) if f.qualname != "<module>" else ():
            if type(node.op) is ast.Or and len(node.values) == 2 and _strips_then_falls_back(*node.values):
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               f"`{lb.src(node)}` falls back to the whole piece when stripping its '▁' leaves nothing: "
                               "the bare '▁' piece is sized as the 3 bytes of its marker (4 with the space byte), not 1"))
    return out


def _strips_then_falls_back(first, fallback) -> bool:
    """first strips the marker from the fallback expression: where it leads (`t[1:] if lead
    else t`), or by name (`t.lstrip("▁")`, `t.removeprefix(MARK)`); a list's tail with a
    fallback to the list (`times[1:] or times`) is none."""
    if not pt.strips(first):
        return False
    held = lb.src(fallback)
    return any(type(n) is ast.IfExp and any(type(x) is ast.Subscript and type(x.slice) is ast.Slice
                                            and lb.src(x.value) == held for x in lb.walk(n.body))
               or type(n) is ast.Call and type(n.func) is ast.Attribute and lb.src(n.func.value) == held
               and n.func.attr in ("lstrip", "removeprefix", "replace", "strip")
               for n in lb.walk(first))
