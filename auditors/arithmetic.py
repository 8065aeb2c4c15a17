"""What arithmetic, comparisons and text do to labels (a mixin of `flow.FuncInfo`).

A multiplicative or xor combination of tokens is a hash (a bucket key), and one that
extends a context hash with one more token extends the key (EXTKEY); a text key that
spells out the target (`ctx + "|" + str(tok)`, `f"{ctx}|{tok}"`) is a key of it; a
quotient of counts by their sum is a distribution; an ordered comparison of the
target's probability is a switch the target decided (TGATE).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.labels import DATA, EMPTY, INDEX_ONLY, KEYS, NOT_COMPARED

_ORDERED = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_WEIGHED = frozenset({"DIST", "TGTP"})  # probabilities: what a sum of products mixes, where a hash mixes tokens


class ArithmeticFlow:
    def _binop(self, e: ast.BinOp) -> frozenset:
        out = self.binop(e)
        if type(e.op) is not ast.Div:
            return out
        if shapes.normalized(e):  # counts / counts.sum(): a distribution over the vocabulary, no longer counts
            out = (out - {"CCNT", "CNT"}) | {"DIST"}
        return out - {"CTGT", "CSUM"}  # a quotient is no longer a raw count

    def _compare(self, e: ast.Compare) -> frozenset:
        if len(e.ops) == 1 and isinstance(e.ops[0], (ast.Eq, ast.NotEq)):
            self.event("compare", e, {"left": self.L(e.left), "right": self.L(e.comparators[0])})
        out = EMPTY.union(self.L(e.left), *[self.L(c) for c in e.comparators]) - NOT_COMPARED
        if len(e.ops) == 1 and type(e.ops[0]) in (ast.Is, ast.IsNot) and type(e.comparators[0]) is ast.Constant:
            return EMPTY  # `fn is not None`: whether something exists, none of its data
        if "TGTP" in out and type(e.ops[0]) in _ORDERED:
            out = out | {"TGATE"}  # `p_tgt < thr`: decided by the target's own probability
        return out

    def binop(self, e: ast.BinOp) -> frozenset:
        left, right = self.L(e.left), self.L(e.right)
        both = left | right
        out = both - INDEX_ONLY
        op = e.op
        if type(op) is ast.Add or type(op) is ast.Sub:
            out |= both & {"RPOS"}
            if type(op) is ast.Sub and "POS1" in left and _from_zero(self, e.right):
                out |= {"POS1"}  # `ends - k` for k in range(n): the window of n positions that ends at each target
            if type(op) is ast.Add and "STEM" in left and lb.wildcard_after_stem(
                    [(left, None), (right, e.right.value if type(e.right) is ast.Constant else None)]):
                out = (out - lb.STEM) | DATA  # `prefix + "_*.bin"`  # `a + i`: still a loop position
            if type(op) is ast.Add and "CAND" in both and lb.shifted_one(e) and _range_term(e):
                out |= {"POS1"}  # `starts[:, None] + 1 + arange(n)`: the positions one ahead of each window's inputs
        if isinstance(op, (ast.BitXor, ast.Add)):
            prod_l, prod_r = lb.is_product(e.left), lb.is_product(e.right)
            if isinstance(op, ast.BitXor) and (prod_l or prod_r or "HASH" in both):
                out |= {"HASH"}
            if isinstance(op, ast.Add) and ("HASH" in both or (prod_l and prod_r and not both & _WEIGHED)):
                out |= {"HASH"}  # (`w * p_lm + (1 - w) * p_ng` weighs probabilities: a mixture, no hash)
            elif isinstance(op, ast.Add) and not both & _WEIGHED and any(
                    p and _hash_multiplier(x, self) and other & _TOKENS for p, x, other in ((prod_l, e.left, right), (prod_r, e.right, left))):
                out |= {"HASH"}  # `h * 1000003 + tok`: a polynomial rolling hash of tokens
            if isinstance(op, ast.Add) and any(_spelled(x) and "TGT" in v for x, v in ((e.left, left), (e.right, right))):
                out |= {"HASH"}  # `ctx_key + "|" + str(token)`: a text key that spells out the target
            ext_r = "HASH" in left and (prod_r or isinstance(op, ast.Add)) and not (right & {"CAND", "HASH"}) and not isinstance(e.right, ast.Constant)
            ext_l = "HASH" in right and (prod_l or isinstance(op, ast.Add)) and not (left & {"CAND", "HASH"}) and not isinstance(e.left, ast.Constant)
            if (ext_r and not self._enumerated(e.right)) or (ext_l and not self._enumerated(e.left)) or "EXTKEY" in both:
                out |= {"EXTKEY", "HASH"}
        elif isinstance(op, (ast.BitAnd, ast.Mod, ast.RShift, ast.FloorDiv)):
            out |= left & KEYS
            inner = e.left
            if isinstance(op, (ast.BitAnd, ast.Mod)) and (lb.is_product(inner) or (
                    isinstance(inner, ast.BinOp) and isinstance(inner.op, (ast.Add, ast.BitXor))
                    and (lb.is_product(inner.left) or lb.is_product(inner.right)))):
                out |= {"HASH"}  # (t * M) % buckets, (h * M + t) % buckets: a multiplicative hash reduced to a bucket
        elif isinstance(op, (ast.Mult, ast.LShift)):
            out |= both & {"HASH"}
            if type(op) is ast.Mult and any(type(x) is ast.BinOp and type(x.op) is ast.BitXor for x in (e.left, e.right)) \
                    and both & (DATA | {"TGT"}):
                out |= {"HASH"}  # `(h ^ tok) * FNV_PRIME`: an FNV-1a step over tokens
        if type(op) not in (ast.BitAnd, ast.BitOr) and not (
                type(op) is ast.Mult and "TPROP" in both and (shapes.is_mask(self, e.left) or shapes.is_mask(self, e.right))):
            out = out - {"TPROP"}  # a count or a sum made from it (bytes of the target): no longer a per-token switch
            # (a value switched on and off by the fact, `beta * starts_word[y].float()`, still is one)
        return out

    def _enumerated(self, e) -> bool:
        """The term is a loop's own counter, cast and scaled (`np.uint64(w) * P` for `w` in
        `range(V)`): hashing every candidate in turn, not a token read from the data."""
        if type(e) is ast.BinOp and type(e.op) is ast.Mult:
            return any(self._enumerated(a) and not self.L(b) & _TOKENS for a, b in ((e.left, e.right), (e.right, e.left)))
        if type(e) is ast.Call and len(e.args) == 1 and lb.call_name(e.func) in _CASTS:
            return self._enumerated(e.args[0])
        return type(e) is ast.Name and bool(self.L(e) & {"RPOS", "CAND"}) and not self.L(e) & _TOKENS

    def _joined(self, e: ast.JoinedStr) -> frozenset:
        """An f-string carries the splits it names (and a remote address); one that joins two or more values with the
        target among them (`f"{ctx}|{tok}"`) is a text key of it (`f"{name}.q"` is not)."""
        parts = [self.L(v) for v in e.values]
        labels = EMPTY.union(*parts)
        joint = sum(type(v) is ast.FormattedValue for v in e.values) >= 2 and "TGT" in labels
        stem = lb.wildcard_after_stem([(p, v.value if type(v) is ast.Constant else None) for p, v in zip(parts, e.values)])
        return (labels & (DATA | lb.URL)) | ({"TGT", "HASH"} if joint else EMPTY) | (DATA if stem else EMPTY)


_CASTS = frozenset({"int", "uint64", "int64", "uint32", "int32", "long"})
_TOKENS = frozenset({"VAL", "TRAIN", "TGT"})


def _hash_multiplier(product, info) -> bool:
    """A product by a large odd number (`h * 1000003`, `t * 0x9E3779B1`, `h * _MUL` with
    `_MUL = np.uint64(0x9E3779B97F4A7C15)`): a hash step, not a scale (`b * 0.5`) or a row
    stride of a small table (`prev * 1024`)."""
    return any(_big_odd(x, info) for x in lb.product_factors(product))


def _big_odd(x, info, depth: int = 0) -> bool:
    """x is a large odd integer: a literal, a name bound to one, or one wrapped in an integer type."""
    if type(x) is ast.Constant:
        return type(x.value) is int and x.value >= 1 << 16 and x.value % 2 == 1
    if depth > 2:
        return False
    if type(x) is ast.Name:
        return _big_odd(info.binding(x.id), info, depth + 1)
    return type(x) is ast.Call and len(x.args) == 1 and not x.keywords and lb.call_name(x.func) in _INT_TYPES \
        and _big_odd(x.args[0], info, depth + 1)


_INT_TYPES = frozenset({"int", "uint64", "int64", "uint32", "int32", "tensor"})


def _from_zero(info, e) -> bool:
    """e is the variable of a loop over a range that takes the value 0 (`range(n)`,
    `range(0, n)`, `range(n - 1, -1, -1)`)."""
    r = info.binding(e.id) if type(e) is ast.Name else None
    if not (type(r) is ast.Call and lb.call_name(r.func) == "range" and r.args and not r.keywords):
        return False
    return len(r.args) == 1 or (type(r.args[0]) is ast.Constant and r.args[0].value == 0) \
        or (len(r.args) == 3 and lb.src(r.args[1]) == "-1" and lb.src(r.args[2]) == "-1")


def _range_term(e: ast.BinOp) -> bool:
    """One term of the sum is a range itself (`arange(n)[None]`), not a value that came from one."""
    terms = [e]
    while terms:
        t = terms.pop()
        while type(t) is ast.Subscript or (type(t) is ast.Call and type(t.func) is ast.Attribute and t.func.attr in lb.PASS_METHODS):
            t = t.value if type(t) is ast.Subscript else t.func.value
        if type(t) is ast.BinOp and type(t.op) is ast.Add:
            terms += [t.left, t.right]
        elif type(t) is ast.Call and lb.call_name(t.func) in lb.RANGE_FUNCS:
            return True
    return False


def _spelled(e) -> bool:
    """A value written out as text (`str(token)`, `repr(t)`): what a text key is made of
    (not a name that already is text, such as a parameter's name in `name + ".q"`)."""
    return type(e) is ast.Call and lb.call_name(e.func) in ("str", "repr") and len(e.args) == 1
