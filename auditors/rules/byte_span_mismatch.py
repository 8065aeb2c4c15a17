"""Bytes summed over a different number of tokens than were scored (RULES.md §2 Section V).

BPB divides the scored tokens' loss by *their* bytes. A common way to count bytes is a prefix
sum over the stream (`prefix[k]` = bytes of tokens 0..k-1) and one subtraction per window,
`prefix[hi] - prefix[lo]`. The rule takes, in a loop of a scoring function, an accumulation of
such a difference (written in place, or returned by a helper of the module with the call's
arguments put in for its parameters) and the accumulation beside it of the scored token count
(an integer expression, `acc[1] += L - first`), and flags the pair when the span `hi - lo`
always differs from the count by the same nonzero number: `span_bytes(prefix, s + first,
s + L)` with `return prefix[last + 1] - prefix[first]` counts both ends, one token more than
the `L - first` targets scored, and every window adds the bytes of a token scored elsewhere.
A byte table summed at one slice of the stream (`(base[tok[lo:hi]] + ...).sum()`, in place or
in a helper) spans `hi - lo` tokens the same way.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import arith, raw, samples
from auditors.settings_forms import inlined_return

RULE = RuleInfo("byte-span-mismatch", "tokenizer_byte_miscount",
                "bytes summed over a different number of tokens than were scored",
                "RULES.md §2 Section V (bytes of exactly the scored tokens)")


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        for loop in m.under(f, m.nodes_of(ast.For)):
            sums = [n for n in loop.body for n in lb.walk(n) if type(n) is ast.AugAssign and type(n.op) is ast.Add]
            counts = [a for a in sums if _integer(a.value)]
            for a in sums:
                span = _prefix_span(m, f, a.value)
                if span is None:
                    continue
                for c in counts:
                    gap = _constant_gap(span, c.value)
                    if gap:
                        out.append(raw(RULE, f, a, None, "error", "medium",
                                       f"adds the bytes of `{lb.src(span)}` tokens (a span of the stream) where "
                                       f"`{lb.src(c.value)}` tokens are scored (line {c.lineno}): {abs(gap)} token(s) "
                                       f"{'more' if gap > 0 else 'fewer'} per window in the BPB denominator"))
                        break
    return out


def _integer(e) -> bool:
    """An integer expression of names and constants with at least one name (`L - first`)."""
    return any(type(n) is ast.Name for n in lb.walk(e)) and all(
        type(n) in (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Load) or isinstance(n, (ast.operator, ast.unaryop))
        for n in lb.walk(e))


def _prefix_span(m, f, value) -> ast.expr | None:
    """`hi - lo` for `p[hi] - p[lo]` (also with `.sum()`, `float(...)` around it), or for a call of a
    module function that returns such a difference of its parameter."""
    while type(value) is ast.Call and (lb.call_name(value.func) in ("float", "int") and value.args):
        value = value.args[0]
    if type(value) is ast.BinOp and type(value.op) is ast.Sub and all(type(s) is ast.Subscript for s in (value.left, value.right)) \
            and lb.src(value.left.value) == lb.src(value.right.value):
        return ast.BinOp(value.left.slice, ast.Sub(), value.right.slice)
    looked_up = _table_slice_span(value)
    if looked_up is not None:
        return looked_up
    returned = inlined_return(m, f, value, with_locals=True) if type(value) is ast.Call else None
    return _prefix_span(m, f, returned) if returned is not None and type(returned) in (ast.BinOp, ast.Call) else None


def _table_slice_span(value) -> ast.expr | None:
    """`b - a` when the value sums a byte table looked up at one slice of tokens, `base[tok[a:b]]`
    (`(base[cur] + (lead[cur] & ~bnd[prev])).sum()` with `cur = tok[a:b]`): every slice used as a
    table's index spans the same `b - a`."""
    if not (type(value) is ast.Call and lb.call_name(value.func) == "sum"):
        return None
    spans = [ast.BinOp(n.slice.slice.upper, ast.Sub(), n.slice.slice.lower) for n in lb.walk(value)
             if type(n) is ast.Subscript and type(n.slice) is ast.Subscript and type(n.slice.slice) is ast.Slice
             and n.slice.slice.lower is not None and n.slice.slice.upper is not None]
    if not spans or not all(_same(spans[0], other) for other in spans[1:]):
        return None  # (`tok[lo:hi]` and `tok[lo - 1:hi - 1]` alike: one length)
    return spans[0]


def _same(a, b) -> bool:
    return all(x is not None and x == y for x, y in samples(lambda env: (arith(a, env), arith(b, env))))


def _constant_gap(span, count) -> int:
    """span - count when it is the same nonzero number in every sampled environment, else 0."""
    gaps = {None if a is None or b is None else a - b for a, b in samples(lambda env: (arith(span, env), arith(count, env)))}
    return gaps.pop() if len(gaps) == 1 and None not in gaps else 0
