"""Validation documents put back together out of stream order (RULES.md §8, §2 C1).

Evaluation may batch documents any way it likes as long as each token's prediction sees
only tokens before it in the stream. Splitting the validation stream into documents,
reordering them (by length to balance ranks or fill rows: `argsort(lengths)`,
`sorted(docs, key=len)`, a shuffle) and concatenating them into one stream or row that
is then scored with a context window gives each document the tail of whatever document
was placed before it, often a later one: a C1 leak like SmearGate's without BOSFix, but
through attention itself. The rule flags a `cat` / `concatenate` of validation slices
taken in such an order (a comprehension over the order, or a list filled by a loop over
it), unless the file keeps documents apart in attention (variable-length attention with
`cu_seqlens`, a block or document mask).
Legal counterparts: documents concatenated in stream order, each document scored in a
row of its own (padded), reordering only the order in which rows are scored.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("reordered-documents", "cross_doc_leak", "validation documents concatenated out of stream order",
                "RULES.md §8, §2 C1")
_JOINS = {"cat", "concatenate", "hstack"}
_REORDERS = {"argsort", "permutation", "shuffle", "randperm"}
_ISOLATION = ("cu_seqlens", "varlen", "block_mask", "document_mask", "doc_mask", "BlockMask")


def check(m):
    if not any(_reorders(c) for c in m.nodes_of(ast.Call)):
        return []  # nothing is reordered anywhere (most files): no join needs a look
    if any(word in m.source for word in _ISOLATION):
        return []  # attention keeps documents apart
    joins = [c for c in m.nodes_of(ast.Call) if c.args and lb.call_name(c.func) in _JOINS]
    defs = [f for f in m.functions.values() if f.qualname != "<module>"]
    out = []
    for call in joins:
        around = [g for g in defs if g.node.lineno <= call.lineno <= g.node.end_lineno]
        f = max(around, key=lambda g: g.node.lineno) if around else m.functions["<module>"]  # the innermost
        parts = call.args[0]
        order = _comprehension_order(parts) or _filled_by_loop(m, f, parts)
        if order is not None and _reordered(m, f, order) and "VAL" in f.labels_of(parts):
            out.append(raw(RULE, f, call, guards_of(f, call.lineno), "error", "medium",
                           f"joins validation documents in the order of `{lb.src(order)}`, not the stream's: each "
                           "document is then scored with the end of another (often later) document as its context"))
    return out


def _comprehension_order(parts):
    """`[seq[s[i]:e[i]] for i in order]` (or `+ [tail]`): the iterable the pieces follow."""
    if type(parts) is ast.BinOp and type(parts.op) is ast.Add:
        parts = parts.left
    if type(parts) in (ast.ListComp, ast.GeneratorExp) and type(parts.elt) is ast.Subscript:
        return parts.generators[0].iter
    return None


def _filled_by_loop(m, f, parts):
    """`buf` appended to in `for d in sorted(docs, key=len): buf.append(d)`: that loop's iterable."""
    if type(parts) is not ast.Name:
        return None
    for loop in m.under(f, m.nodes_of(ast.For)):
        for n in lb.walk(loop):
            if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr == "append" \
                    and type(n.func.value) is ast.Name and n.func.value.id == parts.id:
                return loop.iter
    return None


def _reorders(call) -> bool:
    """A shuffle or an argsort, or a sort by a key (`sorted(docs, key=len)`); a plain
    `sorted(glob(...))` of shard names is the stream's own order."""
    name = lb.call_name(call.func)
    if name in ("sorted", "sort"):
        return any(k.arg == "key" for k in call.keywords)
    return name in _REORDERS


def _reordered(m, f, order, depth: int = 0) -> bool:
    """The order comes from a sort or a shuffle (directly, a slice of one, a name bound to
    one, or a list sorted or shuffled in place: `docs.sort(key=len)`, `rng.shuffle(docs)`)."""
    if depth > 3:
        return False
    while type(order) is ast.Subscript:
        order = order.value  # `order[rank::world]`
    if type(order) is ast.Name:
        if any(_reorders(c) and ((type(c.func) is ast.Attribute and lb.src(c.func.value) == order.id)
                                 or any(type(a) is ast.Name and a.id == order.id for a in c.args))
               for c in m.under(f, m.nodes_of(ast.Call))):
            return True
        bound = f.binding(order.id)
        return bound is not None and _reordered(m, f, bound, depth + 1)
    if type(order) is ast.BinOp and type(order.op) is ast.Add:  # `docs + [None]`
        return _reordered(m, f, order.left, depth + 1) or _reordered(m, f, order.right, depth + 1)
    return type(order) is ast.Call and _reorders(order)
