"""What indexing does to labels (a mixin of `flow.FuncInfo`).

`x[1:]` of a token stream is its targets; `p[t, y]` of a distribution is the target's
probability; a hashed table read with a key is a count (and a read event, target-keyed
when the key carries the target); a per-token table read at the target is a fact about
the answer (TPROP); any other index passes on the data the value came from. A table
indexed by a loop variable over constant keys (`SPLITS[k] for k in MIX`) reads those
entries, and a comprehension's element is evaluated where its generators run (under
`islice(items, k)`: only where k is not 0).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.labels import DATA, EMPTY, KEYS
from auditors.dispatch import default_value
from auditors.objects import keyed



class IndexFlow:
    def subscript(self, e: ast.Subscript) -> frozenset:
        if type(e.ctx) is ast.Load and self.module.once("classes with __getitem__", _getitem_classes):
            call = _getitem_call(self, e)
            if call is not None:  # `ctxs[j]` of an object whose class defines `__getitem__`: a call of it
                from auditors.calls import call_labels
                return call_labels(self, call)
        base, idx = self.L(e.value), self.L(e.slice)
        if type(e.slice) in (ast.Call, ast.Attribute) and type(e.value) is ast.Name and e.value.id in self.module.keyed_roots \
                and isinstance(e.ctx, ast.Load):
            chosen = default_value(self, e.slice)  # `sources[os.environ.get("SPLIT", "val")]`: the default's entry
            key = keyed(e.value.id, chosen) if isinstance(chosen, str) else None
            if key is not None and self._bound(key):
                v = self.lookup(key)
                self.read_names.setdefault(key, v)
                return v
        if type(e.slice) is ast.Name and e.slice.id in self.loop_keys and type(e.value) is ast.Name \
                and e.value.id in self.module.keyed_roots and isinstance(e.ctx, ast.Load):
            keys = [keyed(e.value.id, k) for k in self.loop_keys[e.slice.id]]  # `SPLITS[k] for k in MIX`: those entries
            if all(self._bound(k) for k in keys):
                found = [self.lookup(k) for k in keys]
                for k, v in zip(keys, found):
                    self.read_names.setdefault(k, v)
                return EMPTY.union(*found)
        if type(e.slice) is ast.Constant and isinstance(e.slice.value, str):
            if type(e.value) is ast.Name and e.value.id in self.module.keyed_roots:
                key = keyed(e.value.id, e.slice.value)
                if self._bound(key):
                    v = self.lookup(key)
                    self.read_names.setdefault(key, v)
                    return v
                # a key stored without a constant (`cfg[k.lower()] = default`): not the splits that
                # other constant keys were given (`cfg["val_files"] = ...` read as cfg["data_path"])
                named = EMPTY.union(*self._keyed_entries(e.value.id).values()) & DATA
                return base - named
            elif type(e.value) is ast.Attribute:  # args.splits["fit"] of a class-level dict
                key = keyed(e.value.attr, e.slice.value)
                self.read_attrs.add(key)
                v = self.module.attr_labels.get(key)
                self.read_shared.setdefault(("attr", key), v if v is not None else EMPTY)
                if v is not None:
                    return v
        if (lb.shifted_slice(e.slice) and not ("BLOB" in base and not base & {"VAL", "TRAIN"}) and not _command_line(e.value)) or (
                type(e.slice) is ast.Slice and type(e.slice.lower) is ast.Name and e.slice.step is None and base & DATA
                and "RPOS" in self.lookup(e.slice.lower.id) and self.ctx.loops and shapes.read_before(self.module, self.ctx.loops[-1], e)):
            # x[1:] of a token stream is its targets; of a shipped file's bytes, a header skipped
            return (base - KEYS - {"CAND", "POS1"}) | {"TGT"}
        if base & DATA and _column(e, "last") and _context_windows(self, e.value):
            return (base - KEYS - {"CAND", "POS1"}) | {"TGT"}  # `win[:, -1]` of windows whose `win[:, :-1]` is the context
        if "TGT" in base and _column(e, "head") and _gram_rows(self, e.value):
            return base - {"TGT"}  # `g[:, :-1]` of whole grams: their context, without the token that follows it
        if base & DATA and type(e.slice) is not ast.Slice and _window_view(self, e.value) and _rows_named_for_grams(self):
            return (base - KEYS - {"CAND", "POS1"}) | (idx & DATA) | {"TGT"}  # `g = windows[ends - n + 1]`, read as
            # `g[:, :-1]` (the context) and whole (the gram, ending at the token that follows it)
        if idx & KEYS and "CAND" in idx and isinstance(e.ctx, ast.Load):
            return (base - KEYS - {"CAND"}) | {"CCNT"}  # counts of every candidate token
        if "CCNT" in base and idx & {"TGT", "VAL", "TGTP"}:  # one candidate picked by a data token
            return (base - {"CCNT"}) | {"CTGT"}
        if type(e.slice) is ast.Tuple and len(e.slice.elts) == 2 and idx & KEYS and isinstance(e.ctx, ast.Load):
            row, col = (self.labels_of(x) for x in e.slice.elts)
            if row & KEYS and "TGT" not in row and "TGT" in col and not col & KEYS:
                # `table[ctx_key, y]`: the row the context picks, read at the target's column (as `table[ctx_key]`
                # then `.gather(1, y)`): the target's candidate count, no key made from the target (a row key that
                # extends a shorter context hash by a context token is a longer context, not the target's key)
                self.table_read(e, e.value, base, row - {"EXTKEY"})
                return (base - KEYS) | {"CTGT"} | (idx & DATA)
        if idx & KEYS and isinstance(e.ctx, ast.Load):
            return self.table_read(e, e.value, base, idx)
        # an index selects elements: the data it came from, not its own meaning, flows on
        out = base if isinstance(e.slice, ast.Slice) else base | (idx & DATA)
        if "POS1" not in base and (("POS1" in idx and type(e.slice) is not ast.Slice) or (type(e.slice) is ast.Slice and (
                "POS1" in self.L(e.slice.lower) or (lb.plus_one(e.slice.upper) and "POS1" in self.L(e.slice.upper.left))))):
            # (`val[j - w : j]` ends before the target at j: its context; `val[j : j + k]` starts at it, and
            # `val[j - w + 1 : j + 1]` takes it in)
            out = out | {"TGT"}
        elif ("CAND" in idx or "RPOS" in idx) and base & DATA and lb.plus_one(e.slice):
            out = out | {"TGT"}  # stream[pos + 1] for a range of positions: the tokens scored at them
        elif "RPOS" in idx and type(e.slice) is ast.Name and base & DATA and self.statement is not None \
                and shapes.read_before(self.module, self.ctx.loops[-1] if self.ctx.loops else
                                       self.node if e.slice.id in self.params else self.statement, e):
            # `f(toks[t - 2], toks[t - 1], toks[t])`: the token after the context read beside it (for a position
            # handed in, `def hint(state, j)`, anywhere in the function)
            out = out | {"TGT"}
        if "DIST" in base and ("TGT" in idx or shapes.next_token_index(self, e.slice)):
            out = out | {"TGTP"}  # p[t, y] of a distribution, y the target or val[t + 1]
        elif "TGT" in idx and shapes.row_and_target(self, e.slice):
            out = out | {"TGTP"}  # p[arange(n), y]: each row's entry for its target
        elif not base & lb.HOLDS_DATA and "TGTP" not in idx and not lb.has_slice(e.slice) \
                and ("TGT" in idx or shapes.next_token_index(self, e.slice)):
            out = out | {"TPROP"}  # has_space[y]: a fact about the answer read from a per-token table
        return out

    def _comprehension(self, e) -> frozenset:
        # the loop variables live in the comprehension only: `[load(f) for f in train_files]` and
        # `[load(f) for f in val_files]` in one function must not join their `f`
        names = {n.id for g in e.generators for n in lb.walk(g.target) if type(n) is ast.Name}
        saved = {n: self.env[n] for n in names if n in self.env}
        for g in e.generators:
            self.assign_iter(g.target, g.iter)
        ctx, runs = self.ctx, [r for g in e.generators if (r := shapes.range_guard(g)) is not None]
        if runs:  # (`{i: rescore(c) for i, c in islice(chunks, k)}` computes nothing where k is 0)
            self.ctx = type(ctx)(ctx.guards + tuple((r, "range") for r in runs), ctx.loops, ctx.nograd)
        keys = {g.target.id: k for g in e.generators if type(g.target) is ast.Name and (k := self._constant_keys(g.iter))}
        outer, self.loop_keys = self.loop_keys, {**self.loop_keys, **keys} if keys else self.loop_keys
        out = shapes.through_filters(e, self.L(e.value if isinstance(e, ast.DictComp) else e.elt), self.labels_of, self)  # (`if "val" not in f`)
        self.ctx, self.loop_keys = ctx, outer
        for n in names:
            if n in saved:
                self.env[n] = saved[n]
            else:
                self.env.pop(n, None)
        return out

    def table_read(self, e, table, base: frozenset, idx: frozenset) -> frozenset:
        """A lookup of a hashed table (subscript or call): counts of every candidate when
        the key ranges over the vocabulary, else a read event and the count it returns."""
        if "CAND" in idx:
            return (base - KEYS - {"CAND"}) | {"CCNT"}
        target_keyed = "EXTKEY" in idx or "TGT" in idx
        self.event("read", e, {"key": idx, "table": table, "target_keyed": target_keyed})
        return (base - KEYS) | {"TCNT" if target_keyed else "CNT"} | (idx & DATA)


def _getitem_classes(m) -> frozenset:
    return frozenset(q.rsplit(".", 1)[0] for q in m.functions if q.endswith(".__getitem__"))


def _getitem_call(f, e: ast.Subscript) -> ast.Call | None:
    """The call `obj.__getitem__(key)` that `obj[key]` makes when obj is built from a module class
    defining it (one synthetic node per subscript, so every pass records the same call)."""
    m = f.module
    if type(e.value) is ast.Name and e.value.id == "self":
        return None  # (inside the class itself: its own container)
    made = m._facts.setdefault("getitem calls", {})
    if id(e) not in made:
        classes = m._receiver_classes(e.value, f) if type(e.value) in (ast.Name, ast.Call, ast.Attribute) else []
        if not any(c in m.once("classes with __getitem__", _getitem_classes) for c in classes):
            made[id(e)] = None
        else:
            func = ast.copy_location(ast.Attribute(value=e.value, attr="__getitem__", ctx=ast.Load()), e)
            call = ast.copy_location(ast.Call(func=func, args=[e.slice], keywords=[]), e)
            call.end_lineno, call.end_col_offset = e.end_lineno, e.end_col_offset
            made[id(e)] = call
    return made[id(e)]


def _command_line(e) -> bool:
    """`sys.argv[1:]`: the arguments after the script's name, no token stream."""
    return type(e) is ast.Attribute and e.attr == "argv" and type(e.value) is ast.Name and e.value.id == "sys"


_WINDOW_VIEWS = {"sliding_window_view", "unfold"}


def _column(e: ast.Subscript, which: str) -> bool:
    """`w[:, -1]` / `w[..., -1]` ("last"), or `w[:, :-1]` ("head"): the last column of each row,
    or all columns but the last."""
    if type(e.slice) is not ast.Tuple or len(e.slice.elts) < 2:
        return False
    *rest, last = e.slice.elts
    if not all(type(x) is ast.Slice and x.lower is x.upper is x.step is None or type(x) is ast.Constant and x.value is Ellipsis
               for x in rest):
        return False
    if which == "last":
        return _minus_one(last)
    return type(last) is ast.Slice and last.lower is None and last.step is None and _minus_one(last.upper)


def _minus_one(e) -> bool:
    return type(e) is ast.UnaryOp and type(e.op) is ast.USub and type(e.operand) is ast.Constant and e.operand.value == 1


def _window_view(f, value) -> bool:
    """`value` is a name bound to a sliding-window view (`sliding_window_view(toks, n)`)."""
    bound = f.binding(value.id) if type(value) is ast.Name else None
    return type(bound) is ast.Call and lb.call_name(bound.func) in _WINDOW_VIEWS


def _head_read(f, name: str) -> bool:
    """f reads `name[:, :-1]` somewhere."""
    m = f.module
    return any(type(s.value) is ast.Name and s.value.id == name and _column(s, "head")
               for s in m.under(f, m.nodes_of(ast.Subscript)))


def _rows_named_for_grams(f) -> bool:
    """The statement being walked binds one name to rows of a window view (`g =
    windows[idx].astype(np.uint64)`) that f also reads without their last column."""
    st = f.statement
    return type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Name \
        and _head_read(f, st.targets[0].id)


def _gram_rows(f, value) -> bool:
    """`value` is a name bound to rows of a window view (`windows[idx]`, maybe converted:
    `.astype(...)`, `.long()`) and read without its last column."""
    if type(value) is not ast.Name or not _head_read(f, value.id):
        return False
    bound = f.binding(value.id)
    while type(bound) is ast.Call and type(bound.func) is ast.Attribute:
        bound = bound.func.value
    return type(bound) is ast.Subscript and type(bound.slice) is not ast.Slice and _window_view(f, bound.value)


def _context_windows(f, value) -> bool:
    """`value` is a sliding-window view of a token stream (`sliding_window_view(toks, n + 1)`,
    `toks.unfold(0, n + 1, 1)`) whose rows the function also reads without their last column
    (`win[:, :-1]`, the context an n-gram key is made from): the last column of each row is
    then the token that follows its context."""
    if type(value) is not ast.Name:
        return False
    bound = f.binding(value.id)
    if type(bound) is not ast.Call or lb.call_name(bound.func) not in _WINDOW_VIEWS:
        return False
    m = f.module
    return any(type(s.value) is ast.Name and s.value.id == value.id and _column(s, "head")
               for s in m.under(f, m.nodes_of(ast.Subscript)))
