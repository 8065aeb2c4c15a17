"""Arithmetic that combines a tensor with a shifted copy of itself, found per function.

Two rules read it: a shift towards the future (`roll(x, -1)`, `x[:, 1:]` padded at its
end) gives each position the token it is scored on (next_token_feature); a shift to
the previous position of a *flattened* batch gives each row's first position the last
token of another row (row_crossing_shift). A shift is recognized by a function of the
node (`shift_of(node, flat) -> source of the shifted tensor or None`, `flat` naming the
function's flattened views); `partner = roll(ids, -1)` makes `partner` an alias of the
shifted ids and `flat = ids.reshape(-1)` a view of ids. A shifted copy used alone (a
loss's targets) or compared (`roll(x, -1) == bos`, a boundary mask) mixes nothing.
"""

from __future__ import annotations

import ast

from auditors import labels as lb

MIXING = (ast.Add, ast.Mult, ast.BitXor, ast.Mod)  # not `-`: `next_start - start` is a length
MIXING_CALLS = {"bitwise_xor", "add", "mul", "multiply", "logical_xor"}
VIEWS = {"reshape", "view", "flatten", "contiguous", "long", "int", "to", "view_as"}


def view_base(e) -> ast.expr:
    """The tensor a chain of views reads: `ids.reshape(-1).long()` -> ids."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in VIEWS:
        e = e.func.value
    return e


LAYOUTS = {"transpose", "permute", "contiguous", "to", "float", "view", "reshape", "unsqueeze", "squeeze"}


def layout_base(e) -> ast.expr:
    """The array a chain of layout changes starts from: `x.transpose(1, 2).unsqueeze(1)` -> x."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in LAYOUTS:
        e = e.func.value
    return e


def flattens(e) -> bool:
    """`x.reshape(-1)`, `x.view(-1)`, `x.flatten()`: one row for the whole batch."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in VIEWS:
        if e.func.attr == "flatten" and not e.args or (
                e.func.attr in ("reshape", "view") and len(e.args) == 1 and lb.src(e.args[0]) == "-1"):
            return True
        e = e.func.value
    return False


class Scan:
    def __init__(self, shift_of, makers: set[str] | None = None):
        """makers: the functions that hold a shift themselves (the only ones whose returns can be
        shifted copies); None: any function."""
        self.shift_of, self.makers = shift_of, makers
        self._inside: set[str] = set()  # helpers being followed (mutual recursion ends there)

    def mixes(self, f):
        """(statement, tensor) for each statement of f whose arithmetic combines a tensor
        with its shifted copy, with the function's aliases and views followed. The tensor is
        one handed to f (token ids, hidden states) or data it read; a grid f computes
        itself (a stencil over a weight-init pattern) holds no positions.

        Helpers of the module are followed one call deep: `p1, p2 = shifts(t)` where
        `shifts` returns a shifted copy of its argument makes p2 an alias, and
        `keys(t, p1, p2)` mixes when `keys` combines those two parameters."""
        for node, mixed in self._statements(f, {}):
            if mixed and (mixed in f.params or f.lookup(mixed) & lb.DATA):
                yield node, mixed  # a function's input, or data it read (not a grid it built itself)

    def _statements(self, f, aliases: dict):
        """(statement, mixed tensor or None) for f's assignments and returns; `aliases`
        (shifted copies: name -> the tensor shifted) is filled as they are read."""
        views, flat = {}, set()
        for node in f.nodes:
            if type(node) not in (ast.Assign, ast.AugAssign, ast.Return) or node.value is None:
                continue
            value = node.value
            if type(node) is ast.Assign and type(value) is ast.Call:
                aliases.update(self._returned_shifts(f, node.targets[0], value, views))
            if type(node) is ast.Assign and len(node.targets) == 1 and type(node.targets[0]) is ast.Name \
                    and type(value) is not ast.BinOp:
                target, shifted = node.targets[0].id, self._shifted(value, aliases, views, flat)
                viewing = type(value) is ast.Call and type(value.func) is ast.Attribute and value.func.attr in VIEWS
                if shifted and (self.shift_of(value, flat) is not None or viewing):
                    aliases[target] = next(iter(shifted))  # partner = roll(ids, -1).long()
                    continue
                if viewing:
                    base = lb.src(view_base(value))
                    views[target] = views.get(base, base)  # flat = ids.reshape(-1)
                    if flattens(value):
                        flat.add(target)
            mixed = self._mixing(value, aliases, views, flat) or self._mixed_by_helper(f, value, aliases, views, flat)
            if mixed is None and type(node) is ast.AugAssign and type(node.target) is ast.Name \
                    and views.get(node.target.id, node.target.id) in self._shifted(value, aliases, views, flat):
                mixed = node.target.id  # x += g * roll(x, -1)
            yield node, mixed

    @staticmethod
    def _arguments(f, call: ast.Call):
        """(the module function called, its parameters lined up with the call's arguments)."""
        g = f.module.resolve(call.func, f)
        if g is None or any(type(a) is ast.Starred for a in call.args):
            return None, []
        params = g.params[1:] if g.is_method and type(call.func) is ast.Attribute else g.params
        return g, list(zip(params, call.args))

    def _returned_shifts(self, f, target, call: ast.Call, views) -> dict:
        """`p1, p2 = shifts(t)`, `prev = previous(t)`: the names bound to what a helper returns
        as a shifted copy of one of its parameters, mapped to the argument passed for it."""
        g, given = self._arguments(f, call)
        if g is None or g is f or (self.makers is not None and g.qualname not in self.makers):
            return {}
        key = ("returned shifts", self.shift_of, g.qualname)
        if key not in f.module._facts:
            f.module._facts[key] = {}
            own: dict = {}
            for node, _ in self._statements(g, own):
                if type(node) is ast.Return:
                    elts = node.value.elts if type(node.value) is ast.Tuple else [node.value]
                    f.module._facts[key] = {i: own[e.id] if type(e) is ast.Name else self.shift_of(e, ())
                                            for i, e in enumerate(elts) if (own.get(e.id) if type(e) is ast.Name else
                                                                             self.shift_of(e, ())) in g.params}
                    # (`return torch.roll(t, 1, dims=1)`: the shifted copy returned directly)
        passed = {p: lb.src(view_base(a)) for p, a in given}
        names = target.elts if type(target) is ast.Tuple else [target]
        return {n.id: views.get(passed[p], passed[p]) for i, n in enumerate(names)
                if type(n) is ast.Name and (p := f.module._facts[key].get(i)) in passed}

    def _mixed_by_helper(self, f, value, aliases, views, flat) -> str | None:
        """`keys(t, p1, p2)` with p2 a shifted copy of t: the helper mixes its parameter for
        p2 with its parameter for t (run with the one marked as the other's shifted copy)."""
        for call in (c for c in lb.walk(value) if type(c) is ast.Call):
            if not any(self._shifted(a, aliases, views, flat) for a in call.args):
                continue  # (no argument is a shifted copy: nothing to follow)
            g, given = self._arguments(f, call)
            if g is None or g is f or g.qualname in self._inside:
                continue
            for shifted_p, a in given:
                for name in self._shifted(a, aliases, views, flat):
                    for plain_p, b in given:
                        if b is not a and self._reads(b, name, aliases, views, flat) and self._mixes(g, shifted_p, plain_p):
                            return name
        return None

    def _mixes(self, g, shifted: str, plain: str) -> bool:
        """g combines its parameter `plain` with `shifted` taken as plain's shifted copy."""
        self._inside.add(g.qualname)
        try:
            return any(mixed == plain for _, mixed in self._statements(g, {shifted: plain}))
        finally:
            self._inside.discard(g.qualname)

    def _shifted(self, e, aliases, views, flat) -> set[str]:
        """Tensors whose shifted copy some part of `e` reads (not inside a comparison)."""
        out, todo = set(), [e]
        while todo:
            sub = todo.pop()
            if type(sub) is ast.Compare:
                continue
            moved = self.shift_of(sub, flat)
            if moved is not None:
                out.add(views.get(moved, moved))
                continue
            if type(sub) is ast.Name and sub.id in aliases:
                out.add(aliases[sub.id])
            todo.extend(ast.iter_child_nodes(sub))
        return out

    def _reads(self, e, name, aliases, views, flat) -> bool:
        """`e` reads the unshifted tensor `name` (or a view of it) outside any shift."""
        todo = [e]
        while todo:
            sub = todo.pop()
            if type(sub) is ast.Compare or self.shift_of(sub, flat) is not None:
                continue
            if type(sub) is ast.Name and sub.id not in aliases and views.get(sub.id, sub.id) == name:
                return True
            todo.extend(ast.iter_child_nodes(sub))
        return False

    def _mixing(self, value, aliases, views, flat) -> str | None:
        for b in lb.walk(value):
            if type(b) is ast.BinOp and isinstance(b.op, MIXING):
                pairs = ((b.left, b.right), (b.right, b.left))
            elif type(b) is ast.Call and lb.call_name(b.func) in MIXING_CALLS and len(b.args) == 2:
                pairs = ((b.args[0], b.args[1]), (b.args[1], b.args[0]))  # torch.bitwise_xor(prev * A, ids * B)
            else:
                continue
            for side, other in pairs:
                for name in self._shifted(side, aliases, views, flat):
                    if self._reads(other, name, aliases, views, flat):
                        return name
        return None


def compares_ids(node) -> bool:
    """An equality test anywhere under node (`ids == bos`): a mask at document starts."""
    return any(type(c) is ast.Compare and any(type(o) in (ast.Eq, ast.NotEq) for o in c.ops) for c in lb.walk(node))


def resets(f) -> bool:
    """The function stores into a slice of something (`prev[:, 0] = pad`, `prev[::T] = pad`)
    or compares token ids (`where(ids == bos, ...)`): a shifted copy's boundary is masked."""
    return compares_ids(f.node) or any(type(t) is ast.Subscript for n in f.nodes if type(n) is ast.Assign for t in n.targets)
