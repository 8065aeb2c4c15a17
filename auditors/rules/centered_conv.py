"""A convolution over the sequence that is padded on both sides (RULES.md §2 C1: p_t may
depend only on tokens before t).

A causal convolution of width K pads K - 1 positions in front and keeps the first T
outputs (`Conv1d(d, d, K, padding=K - 1)(x)[..., :T]`), or pads the input on the left
itself and convolves with no padding (`conv1d(F.pad(x, (K - 1, 0)), w)`): output t then
covers inputs t-K+1 .. t. Padding fewer than K - 1 positions in front centres the window
instead: with `padding=K // 2` (or `padding="same"`) output t covers inputs up to
t + (K - 1 - padding), so the features at position t already hold token t + 1, the token
it is scored on (a depthwise "short conv" token mixer, an entropy profile smoothed along
the sequence that sets each position's temperature). The rule flags an `nn.Conv1d` /
`F.conv1d` whose padding is `"same"`, or a number (also from a parameter's default or a
constant of the module) between 1 and K - 2 for a width K it can compute, or written
`K // 2` / `(K - 1) // 2` of the width's own name, and run as a module (a layer whose weights
only feed a causal kernel, `causal_conv1d_fn(x, self.conv.weight)`, pads nothing). Not flagged: `padding=K - 1`,
`padding=0` (the input padded in front beforehand, or the outputs aligned by the
caller; an input padded after the sequence too, `conv1d(F.pad(e, (w // 2, w // 2)), k)`, is
flagged), and widths it cannot compute with a plain number for the padding.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw
from auditors.shift_mixing import layout_base

RULE = RuleInfo("centered-conv", "future_token_peek", "a convolution over the sequence padded on both sides (it reads later tokens)",
                "RULES.md §2 C1 (p_t depends only on tokens before t)")


def check(m):
    out, seen = [], set()
    for f, ev in m.events("call"):
        if ev.data["name"] not in ("Conv1d", "conv1d") or ev.data["callee"] is not None or f.qualname in seen:
            continue  # (one per function: `num` and `den` of one smoothing are one construct)
        node = ev.node
        kws = {k.arg: k.value for k in node.keywords if k.arg}
        padding = kws.get("padding", node.args[4] if len(node.args) > 4 else None)  # (5th in both signatures)
        after = _padded_after(f, node.args[0]) if ev.data["name"] == "conv1d" and node.args and padding is None else None
        if after is not None:  # `conv1d(F.pad(e, (half, half)), k)`: the input padded on both sides beforehand
            seen.add(f.qualname)
            out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                           f"the convolution's input is padded `{lb.src(after)}` after the sequence as well as before it: "
                           "output t covers the positions after t, so each position's features hold the token it is "
                           "scored on"))
            continue
        if padding is None:
            continue
        width = kws.get("kernel_size", node.args[2] if ev.data["name"] == "Conv1d" and len(node.args) > 2 else None)
        reach = _reach(f, padding, width) if ev.data["name"] == "conv1d" or _module_called(m, f, node) else None
        if reach:
            seen.add(f.qualname)
            out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                           f"the convolution pads `{lb.src(padding)}` on both sides of the sequence: output t covers "
                           f"{reach} after it, so each position's features hold the token it is scored on"))
    return out


def _padded_after(f, e, depth: int = 0):
    """The amount a `F.pad(x, (before, after))` (possibly bound to a name first, or inside a
    layout change) adds after the sequence, when it is not zero; else None."""
    e = layout_base(e)
    if type(e) is ast.Name and depth < 2:
        return _padded_after(f, f.binding(e.id), depth + 1)
    if not (type(e) is ast.Call and lb.call_name(e.func) == "pad" and len(e.args) >= 2):
        return None
    spec = e.args[1]
    if type(spec) not in (ast.Tuple, ast.List) or len(spec.elts) != 2:
        return None  # (only a pad of the last axis alone is read as the sequence's)
    after = spec.elts[1]
    return None if type(after) is ast.Constant and after.value == 0 else after


def _module_called(m, f, made: ast.Call) -> bool:
    """The layer is run as a module (`self.conv(h)`), not only a holder of weights handed to
    a causal kernel (`causal_conv1d_fn(x, self.conv1d.weight, ...)`)."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        pairs = [(a.targets[0], a.value)] if len(a.targets) == 1 else []
        if pairs and type(a.value) is ast.Tuple and type(a.targets[0]) is ast.Tuple:
            pairs = list(zip(a.targets[0].elts, a.value.elts))
        for t, v in pairs:
            if v is made and type(t) is ast.Attribute:
                return any(type(c.func) is ast.Attribute and c.func.attr == t.attr for c in m.nodes_of(ast.Call))
    return True  # (made in place or held by a name: run where it is made)


def _reach(f, padding, width) -> str | None:
    """How far past t output t reads, in words, or None when the convolution is causal (or
    this cannot tell)."""
    if type(padding) is ast.Constant and padding.value == "same":
        return "about half the window's positions"
    k, p = _number(f, width), _number(f, padding)
    if isinstance(k, int) and isinstance(p, int):
        return f"{k - 1 - p} position(s)" if 0 < p < k - 1 else None
    if width is not None and type(padding) is ast.BinOp and type(padding.op) is ast.FloorDiv and _is_two(padding.right) \
            and (lb.src(padding.left) == lb.src(width) or lb.src(padding.left) == f"{lb.src(width)} - 1"):
        return "the later half of the window"  # `padding=kernel // 2` of a width it cannot compute
    return None


def _is_two(e) -> bool:
    return type(e) is ast.Constant and e.value == 2


def _number(f, e, depth: int = 0):
    """An int an expression computes from constants, the function's parameter defaults and
    names bound to constants (in f or at module level); else None."""
    if e is None or depth > 4:
        return None
    if type(e) is ast.Constant and type(e.value) is int:
        return e.value
    if type(e) is ast.Tuple and len(e.elts) == 1:
        return _number(f, e.elts[0], depth + 1)
    if type(e) is ast.Name:
        defaults = lb.param_defaults(f.node.args) if type(f.node) in (ast.FunctionDef, ast.AsyncFunctionDef) else {}
        if e.id in defaults:
            return _number(f, defaults[e.id], depth + 1)
        bound = f.binding(e.id) if e.id not in f.params else None
        if bound is None and e.id not in f.params:
            bound = f.module.functions["<module>"].binding(e.id)
        return _number(f, bound, depth + 1) if bound is not None and bound is not e else None
    if type(e) is ast.BinOp and type(e.op) in (ast.Add, ast.Sub, ast.FloorDiv, ast.Mult):
        a, b = _number(f, e.left, depth + 1), _number(f, e.right, depth + 1)
        if a is None or b is None or (type(e.op) is ast.FloorDiv and b == 0):
            return None
        return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(e.op), a // b if b else None)
    return None
