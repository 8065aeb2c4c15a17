"""Bytes per token as a fixed number (RULES.md §2 "Section V"; tokenizer_byte_miscount).

BPB divides the scored tokens' loss in bits by the bytes *those* tokens decode to,
counted from the tokenizer's piece table. Dividing a loss by a constant ratio (an
average bytes-per-token measured once, on another sample or another tokenizer) gives
a number that moves with the constant, not with the text. The shape of a BPB formula:
a loss (data flow: the target's loss or probability) converted to bits (divided by
ln 2, `log(2)`, or times 1/ln 2) and divided by a numeric literal, or a name bound once
to one, other than small whole numbers (averaging over passes or ranks); the steps may
sit in one expression or in names bound once on the way.
The same ratio inverted, tokens per byte multiplied in (`bits * cfg.tokens_per_byte`
with a class default of 0.24), is the same miscount; so is a byte count made as the
token count times a ratio (`nbytes = ntok * bpt`, with `nats / ntok` beside it), whatever
the ratio was measured on.
Legal counterpart: `loss_bits_sum / byte_count` with the count summed from a byte table.
"""

from __future__ import annotations

import ast
import math
import re

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import by_function, guards_of, quotients, raw

RULE = RuleInfo("fixed-byte-ratio", "tokenizer_byte_miscount", "loss divided by a fixed bytes-per-token number",
                "RULES.md §2 (Section V: bytes from the tokenizer's piece table, never a hard-coded ratio)")

_CONVERSIONS = (math.log(2), 1 / math.log(2))


_ENV_DEFAULT = re.compile(r"""(?:environ\.get|getenv)\(\s*["'][^"']+["']\s*,\s*["']?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)["']?\s*\)""")
# a settings helper of the file, `_env("TOKENS_PER_BYTE", 0.41052)`: a variable's name, then its default
_HELPER_DEFAULT = re.compile(r"""^\w+\(\s*["'][A-Z][A-Z0-9_]*["']\s*,\s*["']?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)["']?\s*[,)]""")


def _constant(f, node, depth: int = 0) -> float | None:
    """The number a denominator holds when it is a literal, a name bound once to one, a
    settings attribute whose class default is one (`cfg.tokens_per_byte`, also an
    environment variable's default: `float(os.environ.get("BYTES_PER_TOKEN", "2.436"))`), or
    a constant key of a dict literal handed in for it (`{"bpt": args.bytes_per_token}`)."""
    if depth > 3:
        return None
    if isinstance(node, ast.Attribute) and node.attr in f.module.class_defs:
        text = f.module.class_defs[node.attr]
        try:
            return float(text)
        except ValueError:
            found = _ENV_DEFAULT.search(text) or _HELPER_DEFAULT.search(text)
            return float(found.group(1)) if found else None
    if isinstance(node, ast.Name):
        node = f.binding(node.id)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.value, ast.Name):
        handed = _dict_arguments(f, node.value.id)
        values = [v for d in handed for k, v in zip(d.keys, d.values) if isinstance(k, ast.Constant) and k.value == node.slice.value]
        found = {_constant(f, v, depth + 1) for v in values}
        return found.pop() if len(found) == 1 else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Call):  # `BPT = E("VAL_BYTES_PER_TOKEN", 2.4577)`: a setting's default
        text = lb.src(node)
        found = _ENV_DEFAULT.search(text) or _HELPER_DEFAULT.search(text)
        return float(found.group(1)) if found else None
    return None


def _dict_arguments(f, param: str) -> list[ast.Dict]:
    """Dict literals that callers hand to f as `param`."""
    if param not in f.params:
        return []
    i = f.params.index(param)
    out = []
    for c in f.module.nodes_of(ast.Call):
        if type(c.func) is ast.Name and c.func.id == f.name:
            arg = next((k.value for k in c.keywords if k.arg == param), c.args[i] if i < len(c.args) else None)
            if isinstance(arg, ast.Dict):
                out.append(arg)
    return out


def _factor(f, node) -> float | None:
    """The constant of a divisor `n_tokens * bytes_per_token` (the byte count estimated
    from a fixed ratio), through a name bound once to it."""
    if isinstance(node, ast.Name):
        node = f.binding(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        values = [_constant(f, x) for x in (node.left, node.right)]
        known = [v for v in values if v is not None]
        return known[0] if len(known) == 1 else None
    return None


def _suspicious(value: float) -> bool:
    if value <= 0 or any(abs(value - c) < 1e-3 for c in _CONVERSIONS):
        return False
    return not (value.is_integer() and value <= 16)  # / 2, / 8: averaging passes, ranks, bits per byte


def _is_ln2(f, node) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)) and node.args:
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        arg = _constant(f, node.args[0])
        return name == "log" and arg == 2.0
    value = _constant(f, node)
    return value is not None and abs(value - math.log(2)) < 1e-3


def _chain(f, node, depth: int = 0) -> tuple[bool, list]:
    """(converted to bits, the divisors) of a product/quotient chain, following names
    bound once (`bits = nats / log(2)`, then `bits / ratio`)."""
    if depth > 4:
        return False, []
    if isinstance(node, ast.Name):
        bound = f.binding(node.id)
        return _chain(f, bound, depth + 1) if bound is not None else (False, [])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        bits, divisors = _chain(f, node.left, depth + 1)
        return bits or _is_ln2(f, node.right), divisors + [node.right]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        bits_l, div_l = _chain(f, node.left, depth + 1)
        bits_r, div_r = _chain(f, node.right, depth + 1)
        factor = [_constant(f, x) for x in (node.left, node.right)]
        to_bits = any(v is not None and abs(v - 1 / math.log(2)) < 1e-3 for v in factor)
        return bits_l or bits_r or to_bits, div_l + div_r
    return False, []


_FILLS = {"full": 1, "full_like": 1, "new_full": 1}  # the position of the fill value


def _constant_counts(m) -> list:
    """A byte counter handed the scored targets that returns the same fractional number for
    each (`torch.full(tgt.shape, 2.5186)`, `ones_like(tgt) * self.bytes_per_token`): the byte
    count of every token fixed at an average instead of read from the piece table."""
    out = []
    lambdas = [(t.id, a.value, g) for g, a in by_function(m, ast.Assign) for t in a.targets if type(t) is ast.Name
               and type(a.value) is ast.Lambda and _filled_with_shape(a.value.body)]  # `nbytes = lambda x, y: full(...)`
    for name, lam, g in lambdas:
        value = _filled_with(g, lam.body)
        if value is not None and 1.0 < value < 8.0 and not value.is_integer() and any(
                e.data["name"] == name and e.data["callee"] is None and any("TGT" in a for a in e.data["args"]) and m.scores(h)
                for h, e in m.events("call")):
            out.append(raw(RULE, g, lam, guards_of(g, lam.lineno), "error", "medium",
                           f"{name}() counts {value:g} bytes for every target token it is handed: the bytes of the tokens "
                           "scored must be counted from the tokenizer's piece table, not set to an average"))
    if not any(type(r.value) in (ast.Call, ast.BinOp) and _filled_with_shape(r.value) for r in m.nodes_of(ast.Return)):
        return out  # (a cheap test first: most files return no filled tensor at all)
    handed = {}
    for g, e in m.events("call"):
        if any("TGT" in a for a in e.data["args"]) and m.scores(g):
            for h in [m.functions[q] for q in m.targets(e)] + (  # (a method: any class's, the object may be another's:
                    m.by_name.get(e.data["name"], []) if type(e.node.func) is ast.Attribute else []):  # `COUNTERS[k](...)`)
                handed[h.qualname] = h
    for g in handed.values():
        for r in m.under(g, m.nodes_of(ast.Return)):
            value = _filled_with(g, r.value)
            if value is not None and 1.0 < value < 8.0 and not value.is_integer():
                out.append(raw(RULE, g, r, next((e.ctx for e in g.events if e.line == r.lineno), None), "error", "medium",
                               f"{g.name}() counts {value:g} bytes for every target token it is handed: the bytes of "
                               "the tokens scored must be counted from the tokenizer's piece table, not set to an average"))
                break
    return out


def _filled_with_shape(e) -> bool:
    """e has the shape of a filled tensor (`full(...)`, `ones_like(t) * c`), whatever it holds."""
    if type(e) is ast.Call:
        return lb.call_name(e.func) in _FILLS
    return type(e) is ast.BinOp and type(e.op) is ast.Mult and any(type(x) is ast.Call and lb.call_name(x.func) in ("ones_like", "ones", "new_ones")
                                          for x in (e.left, e.right))


def _filled_with(g, e) -> float | None:
    """The constant that fills the tensor e makes (`full(shape, c)`, `ones_like(t) * c`), else None."""
    if type(e) is ast.Call and lb.call_name(e.func) in _FILLS and len(e.args) > _FILLS[lb.call_name(e.func)]:
        return _constant(g, e.args[_FILLS[lb.call_name(e.func)]])
    if type(e) is ast.BinOp and type(e.op) is ast.Mult:
        for ones, c in ((e.left, e.right), (e.right, e.left)):
            if type(ones) is ast.Call and lb.call_name(ones.func) in ("ones_like", "ones", "new_ones"):
                return _constant(g, c)
    return None


def _measured_ratio(m, f, node) -> str | None:
    """The divisor is a parameter that callers bind to an average measured once
    (`bpt = estimate(sp, sample)` returning `len(text.encode()) / len(tokens)`): bytes
    per token of some other text, not a count of the scored tokens' bytes. Its name, or None."""
    if type(node) is not ast.Name or node.id not in f.params or f.binding(node.id) is not None:
        return None
    for arg, caller in m.arguments_for(f, node.id):
        bound = caller.binding(arg.id) if caller is not None and type(arg) is ast.Name else arg
        helper = m.resolve(bound.func, caller) if type(bound) is ast.Call else None
        if helper is not None and any(_length_ratio(r.value) for r in m.own_returns(helper)):
            return helper.name
    return None


def _token_count_scaled(m, f, node) -> str | None:
    """The byte count is the token count times something (`nbytes = ntok * h["bpt"]`), where
    the same token count divides the loss elsewhere in the function (`nats / ntok`, the loss
    per token): bytes estimated from a ratio. Its source, or None."""
    bound = f.binding(node.id) if type(node) is ast.Name else node
    if type(bound) is not ast.BinOp or type(bound.op) is not ast.Mult:
        return None
    sides = {lb.src(bound.left), lb.src(bound.right)}
    divisions = m.under(f, [n for n in m.nodes_of(ast.BinOp) if type(n.op) is ast.Div])
    per_token = any(lb.src(q.right) in sides and "TGTP" in f.labels_of(q.left) for q in divisions)
    return lb.src(bound) if per_token else None


def _length_ratio(e) -> bool:
    """`len(text.encode()) / len(tokens)`: two lengths divided."""
    return type(e) is ast.BinOp and type(e.op) is ast.Div and all(
        any(type(n) is ast.Call and type(n.func) is ast.Name and n.func.id == "len" for n in lb.walk(side))
        for side in (e.left, e.right))


def check(m):
    out = []
    for f, node in quotients(m):
        measured = _measured_ratio(m, f, node.right) if type(node.right) is ast.Name else None
        scaled = None if measured else _token_count_scaled(m, f, node.right)
        if (measured or scaled) and "TGTP" in f.labels_of(node.left) and m.scores(f) and _chain(f, node)[0]:
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            what = (f"an average bytes-per-token ratio measured once ({measured}()): bytes must be counted" if measured
                    else f"`{scaled}`: the count of scored tokens times a ratio, not the bytes those tokens decode to; "
                    "count them")
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           f"divides a loss in bits by {what} from the tokenizer's piece table for the tokens scored"))
            continue
        value = _constant(f, node.right)
        if value is None:
            value = _factor(f, node.right)
        if value is None or not _suspicious(value) or "TGTP" not in f.labels_of(node.left) or not m.scores(f):
            continue
        if _chain(f, node)[0]:  # a loss in bits over a ratio, not a scale, a log line, an escape probability
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           f"divides a loss in bits by the fixed number {value:g}: bytes per token must be counted "
                           "from the tokenizer's piece table for the tokens scored"))
    out += _constant_counts(m)
    for f in m.functions.values():  # the same ratio as tokens per byte, multiplied in: `bits * 0.2415`
        if f.qualname == "<module>" or not m.scores(f):
            continue
        for node in m.under(f, m.nodes_of(ast.BinOp)):
            if not isinstance(node.op, ast.Mult):
                continue
            value = _constant(f, node.right)
            if value is None or not 0.05 < value < 0.9 or "TGTP" not in f.labels_of(node.left) or not _chain(f, node.left)[0]:
                continue
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           f"multiplies a loss in bits by the fixed tokens-per-byte number {value:g}: bytes per token "
                           "must be counted from the tokenizer's piece table for the tokens scored"))
    return out
