"""Previous-token mixing without a BOS mask (RULES.md §8, SmearGate "BOSFix", #1797).

`x = x + g * shift(x)` copies position t-1 into position t. In a packed stream the
last token of document N then leaks into document N+1; when evaluation batches or
scores documents out of stream order (phased / per-document TTT) that is a C1 leak.
The fix zeroes the gate where the input token is BOS (#1851, #1855, #1868): any
comparison of the token ids inside the mixing function counts as a mask.
Severity is error when the file also splits the stream into documents (compares
token ids to a constant elsewhere, as doc-batched evaluation does), else warning.
BigramHash (hashing previous token *ids* into an embedding) is not this construct.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("smear-without-bos-mask", "cross_doc_leak", "previous-token mixing without a BOS mask",
                "RULES.md §8 (#1797; fixes #1851, #1855, #1868)")


def _prev_slice_of(node: ast.AST) -> str | None:
    """`x[:, :-1]` (every position but the last, i.e. the previous token of the next one)."""
    if isinstance(node, ast.Subscript):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for it in items:
            # only a negation or a constant can read "-1": test that before unparsing
            if isinstance(it, ast.Slice) and it.lower is None and type(it.upper) in (ast.UnaryOp, ast.Constant) \
                    and lb.src(it.upper) == "-1":
                return lb.src(node.value)
    return None


def _shifted(expr: ast.AST, aliases: dict) -> set[str]:
    """Names whose previous position appears in `expr` (directly or via a shifted alias)."""
    out = set()
    for sub in ast.walk(expr):
        p = _prev_slice_of(sub)
        if p:
            out.add(p)
        if isinstance(sub, ast.Name) and sub.id in aliases:
            out.add(aliases[sub.id])
    return out


def _compares_ids(node) -> bool:
    return any(isinstance(c, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq)) for o in c.ops) for c in ast.walk(node))


def check(m):
    prev_slices = {n for n in m.nodes_of(ast.Subscript) if _prev_slice_of(n)}  # tested once, not once per enclosing function
    if not prev_slices:
        return []
    lines = sorted(n.lineno for n in prev_slices)
    out = []
    splits_docs = None
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines) or not any(n in prev_slices for n in f.nodes):
            continue
        aliases = {}  # prev = cat([zeros, x[:, :-1]]) -> prev: x
        for node in f.nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                if not aliases and not m.may_hold(node, lines):
                    continue  # no shifted slice in its value, and no alias of one yet
                src = _shifted(node.value, aliases)
                if not src:
                    continue  # nothing shifted in the value, so in none of its parts: no mixing
                if not any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add) for b in ast.walk(node.value)):
                    aliases[target] = next(iter(src))
                    continue
                mixes = any(
                    isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add)
                    and any(target in _shifted(side, aliases) for side in (b.left, b.right))
                    and any(isinstance(n, ast.Name) and n.id == target for side in (b.left, b.right) for n in ast.walk(side))
                    for b in ast.walk(node.value))
                if not mixes or _compares_ids(f.node):
                    continue
                if splits_docs is None:
                    splits_docs = any(_compares_ids(g.node) for g in m.functions.values() if g is not f and g.qualname != "<module>")
                ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
                out.append(raw(RULE, f, node, ctx, "error" if splits_docs else "warning", "medium",
                               f"mixes the previous position of `{target}` into each position with no mask at BOS: "
                               "the last token of one document leaks into the next"))
    return out
