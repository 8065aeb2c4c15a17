"""The leading-space byte counted at a document's first token (a check of the byte-table rule,
`auditors.rules.byte_table`): at evaluation, the leading-space table read at the targets and
added to the byte count with no boundary table read anywhere in the function gives the
first token of every document (after BOS) a space byte it does not have."""

from __future__ import annotations

import ast
import re

from auditors import labels as lb
from auditors.rules import guards_of, raw

_SPACE_TABLE = re.compile(r"lead|space", re.I)
_BOUNDARY_TABLE = re.compile(r"bound|bos|doc_start|first", re.I)


def space_without_boundary(m, rule) -> list:
    """At evaluation, the leading-space table read at the targets and added to the byte count
    (`base[y] + has_leading_space[y]`) with no boundary table read anywhere in the function:
    the first token of every document (after BOS) gains a space byte it does not have."""
    out = []
    unpacked = _unpacked_space_tables(m)  # function -> (space table name, its sibling tables)
    tables = [n for n in m.nodes_of(ast.Subscript) if type(n.value) is ast.Name and _SPACE_TABLE.search(n.value.id)]
    if not tables and not unpacked:  # (most files: the function walks below are skipped)
        return out
    for f in m.functions.values():
        space, siblings = unpacked.get(f.qualname, (None, ()))
        if space is not None:  # `bb, ls, bd = luts`: the boundary table is read if a sibling is read off the target
            if any(type(n.value) is ast.Name and n.value.id in siblings and "TGT" not in f.labels_of(n.slice)
                   for n in m.under(f, m.nodes_of(ast.Subscript))):
                continue
        elif f.qualname == "<module>" or not m.under(f, tables) or not m.scores(f) \
                or any(_BOUNDARY_TABLE.search(n.id) for n in lb.walk(f.node) if type(n) is ast.Name):
            continue
        named = (lambda i: i == space) if space is not None else _SPACE_TABLE.search
        for b in m.under(f, m.nodes_of(ast.BinOp)):
            if type(b.op) is not ast.Add:
                continue
            reads = [n for side in (b.left, b.right) for n in lb.walk(side) if type(n) is ast.Subscript
                     and type(n.value) is ast.Name and named(n.value.id) and "TGT" in f.labels_of(n.slice)
                     and not _masked_by_previous(f, side, n)]
            if reads:
                out.append(raw(rule, f, b, guards_of(f, b.lineno), "error", "medium",
                               f"adds `{lb.src(reads[0])}` to the byte count with no boundary test on the previous token: "
                               "the first token of each document gains a space byte"))
                break
    return out


def _masked_by_previous(f, side, read) -> bool:
    """The space table's read is masked by a read of another table at other positions than the
    targets (`lead[t] & ~bnd[p]`, `lead[t] * (1 - is_bos[p])`): a boundary test on the previous
    token, whatever the table is named."""
    for n in lb.walk(side):
        if type(n) is ast.BinOp and type(n.op) in (ast.BitAnd, ast.Mult):
            for this, other in ((n.left, n.right), (n.right, n.left)):
                if any(x is read for x in lb.walk(this)) and any(
                        type(x) is ast.Subscript and "TGT" not in f.labels_of(x.slice) for x in lb.walk(other)):
                    return True
    return False


def _unpacked_space_tables(m) -> dict[str, tuple[str, set]]:
    """Functions that unpack the tables a builder of the file returns (`return base, space, bound`,
    `space` made from `piece.startswith("\u2581")`) and the name the space table gets there
    (`bb, ls, bd = lt`), with its siblings: golfed names say nothing, the builder's order does."""
    positions = {}
    for f in m.functions.values():
        for r in m.under(f, m.nodes_of(ast.Return)) if f.qualname != "<module>" else ():
            if type(r.value) is not ast.Tuple:
                continue
            for i, e in enumerate(r.value.elts):
                made = [e, *(f.binding(n.id) for n in lb.walk(e) if type(n) is ast.Name)]
                if any(type(c) is ast.Call and lb.call_name(c.func) == "startswith" and c.args and type(c.args[0]) is ast.Constant
                       and c.args[0].value == "\u2581" for x in made if x is not None for c in lb.walk(x)):
                    positions[len(r.value.elts)] = i
    out = {}
    for f in m.functions.values() if len(positions) == 1 else ():  # (one builder: its order is the file's)
        for a in m.under(f, m.nodes_of(ast.Assign)):
            t = a.targets[0] if len(a.targets) == 1 else None
            if type(t) is ast.Tuple and len(t.elts) in positions and all(type(x) is ast.Name for x in t.elts) \
                    and type(a.value) is ast.Name:
                names = [x.id for x in t.elts]
                k = positions[len(t.elts)]
                out[f.qualname] = (names[k], set(names) - {names[k]})
    return out


