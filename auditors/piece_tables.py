"""Reading the per-token byte tables of a file's code (for auditors.rules.byte_table): the
piece of a token (`sp.id_to_piece(i)`) and what is done to its leading '▁', the values
stored into a table (by subscript, comprehension, dict or set comprehension, append), and
the tests that tell a spaced piece apart."""

from __future__ import annotations

import ast
import copy

from auditors import labels as lb

SPACE = "\u2581"


def calls(node, name) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == name for n in lb.walk(node))


def strips(node) -> bool:
    """An expression that removes the leading '▁': piece[1:], lstrip/removeprefix, or a
    replace by nothing (`replace("▁", " ")` keeps a byte for it)."""
    for n in lb.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Slice) and n.slice.lower is not None:
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("lstrip", "removeprefix", "strip"):
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "replace":
            new = n.args[1] if len(n.args) > 1 else None
            if not (isinstance(new, ast.Constant) and new.value):
                return True
        if type(n) is ast.BinOp and type(n.op) is ast.Sub and _three_bytes_each(n.right):
            return True  # `lengths - 3 * lead`: the '▁' (3 UTF-8 bytes) taken off each piece that has one
    return False


def _three_bytes_each(e) -> bool:
    """`3 * lead` / `lead * 3`: three bytes for each entry of a flag array."""
    return type(e) is ast.BinOp and type(e.op) is ast.Mult and any(
        type(x) is ast.Constant and x.value == 3 for x in (e.left, e.right))


def decodes_one(node) -> bool:
    """`sp.decode([i])` / `decode_ids([i])` / `DecodeIds([i])` anywhere in `node`: decoding
    a single token, which turns a byte-fallback token into U+FFFD, 3 bytes, not 1."""
    return any(map(decode_call, lb.walk(node)))


DECODERS = frozenset({"decode", "decode_ids", "DecodeIds", "decode_pieces"})


def decode_call(n) -> bool:
    return type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in DECODERS and len(n.args) == 1 \
        and type(n.args[0]) in (ast.List, ast.Tuple) and len(n.args[0].elts) == 1


def counts_piece(value, unstripped: set[str]) -> bool:
    """len(piece.encode()) / len(piece) of a piece that still holds its '▁', or `... + 1`."""
    if isinstance(value, ast.IfExp) and strips(value.body) and not strips(value.orelse):
        return False  # `len(p[1:]...) if lead else len(p...)`: the '▁' is stripped where there is one
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add) and any(isinstance(s, ast.Constant) and s.value == 1 for s in (value.left, value.right)):
        return True
    if any(type(n) is ast.BinOp and type(n.op) is ast.Sub and _space_test(n.right) for n in lb.walk(value)):
        return False  # `len(t.encode()) - int(t[:1] == " ")`: the space the piece starts with taken off again
    for n in _lengths(value):
        names = {x.id for x in lb.walk(n.args[0]) if isinstance(x, ast.Name)}
        if (names & unstripped or calls(n.args[0], "id_to_piece")) and not strips(n.args[0]):
            return True
    return False


def _lengths(value) -> list:
    """The `len(...)` calls in value that give a size, not one compared (`len(p) > 0 and
    p[-1] in ".!?"` is a test of the piece: a flag table, no byte count)."""
    tested = {id(x) for c in lb.walk(value) if type(c) is ast.Compare for x in (c.left, *c.comparators)}
    return [n for n in lb.walk(value) if type(n) is ast.Call and type(n.func) is ast.Name and n.func.id == "len"
            and n.args and id(n) not in tested]


def _space_test(e) -> bool:
    """A test of whether a piece starts with its space (`t[:1] == " "`, `p.startswith("▁")`), as a number."""
    return any(type(n) is ast.Constant and n.value in (" ", "\u2581") for n in lb.walk(e)) and any(
        type(n) is ast.Compare or type(n) is ast.Call and lb.call_name(n.func) == "startswith" for n in lb.walk(e))


def sizes_piece(value, names: set[str]) -> bool:
    """`len(...)` of a piece, with its '▁' or without: the size of a byte-fallback token's
    piece ('<0x41>', 6) unless that token is special-cased."""
    return counts_piece(value, names) or any(
        {x.id for x in lb.walk(n.args[0]) if isinstance(x, ast.Name)} & names or calls(n.args[0], "id_to_piece")
        for n in _lengths(value))


def is_space_test(test, named: frozenset = frozenset()) -> bool:
    """`piece.startswith("▁")`, or `startswith(" ")` of a piece whose "▁" was replaced by a
    space; the marker may be a name or class attribute bound to it (`self.SPACE`)."""
    return calls(test, "startswith") and any(
        (isinstance(c, ast.Constant) and c.value in (SPACE, " ")) or (type(c) is ast.Attribute and c.attr in named)
        or (type(c) is ast.Name and c.id in named) for c in lb.walk(test))


def literal(src: str):
    try:
        return ast.literal_eval(src)
    except (ValueError, SyntaxError):
        return None


def space_names(m) -> frozenset:
    """Module names and class attributes bound to the '▁' marker or a space (`SPACE = "\u2581"`)."""
    out = {k for k, src in m.class_defs.items() if literal(src) in (SPACE, " ") and k.isupper()}
    module = m.functions["<module>"]
    out |= {k for k, v in module.defs.items() if type(v) is ast.Constant and v.value in (SPACE, " ") and k.isupper()}
    return frozenset(out)


class Element:
    """A value stored into a table some other way than `table[i] = value`: a
    comprehension's element (`np.array([len(sp.id_to_piece(i).encode()) for i in ...])`)
    or what is appended to a list (`table.append((len(piece.encode()), False))`)."""

    def __init__(self, value, lineno: int):
        self.value, self.lineno = value, lineno


def over_lists(comp) -> ast.expr:
    """A comprehension's element with each loop variable that runs over a named list
    written as that list: `len(p.encode()) for p in stripped` reads as
    `len(stripped.encode())`, so what is known of the list (stripped or not) holds for it."""
    over = {g.target.id: g.iter.id for g in comp.generators if type(g.target) is ast.Name and type(g.iter) is ast.Name}
    for g in comp.generators:  # `for p, s in zip(pieces, flags)`: p runs over pieces
        if type(g.target) is ast.Tuple and type(g.iter) is ast.Call and lb.call_name(g.iter.func) == "zip":
            over.update({t.id: a.id for t, a in zip(g.target.elts, g.iter.args) if type(t) is ast.Name and type(a) is ast.Name})
        elif type(g.target) is ast.Tuple and len(g.target.elts) == 2 and type(g.target.elts[1]) is ast.Name \
                and type(g.iter) is ast.Call and type(g.iter.func) is ast.Attribute and g.iter.func.attr == "items" \
                and type(g.iter.func.value) is ast.Name:  # `for i, p in pieces.items()`: p runs over the dict's values
            over[g.target.elts[1].id] = g.iter.func.value.id
    element = comp.value if type(comp) is ast.DictComp else comp.elt  # (a dict comprehension stores its values)
    if not over:
        return element

    class Rename(ast.NodeTransformer):
        def visit_Name(self, n):
            return ast.copy_location(ast.Name(over[n.id], n.ctx), n) if n.id in over else n
    return Rename().visit(copy.deepcopy(element))


REDUCED = frozenset({"mean", "average", "median"})  # (a sum of piece sizes may be a byte count)


def table_stores(stmts):
    for st in stmts:
        # (a comprehension reduced at once, `np.mean([len(p.encode()) for p in pieces])`, is a statistic, no table)
        reduced = {id(a) for c in lb.walk(st) if type(c) is ast.Call and lb.call_name(c.func) in REDUCED for a in c.args}
        for b in lb.walk(st):  # (`np.array([len(p.encode()) for p in pieces]) - 3 * lead`: the difference too)
            if type(b) is ast.BinOp and type(b.op) is ast.Sub and _three_bytes_each(b.right):
                yield Element(b, b.lineno)
        for n in lb.walk(st):
            if id(n) in reduced:
                continue
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Subscript):
                yield n
            elif isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Tuple) \
                    and any(isinstance(t, ast.Subscript) for t in n.targets[0].elts):
                yield Element(n.value, n.lineno)  # lens[i], lead[i] = piece_size(sp, i)
            elif isinstance(n, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
                yield Element(over_lists(n), n.lineno)
                ids = {x.id for g in n.generators for x in lb.walk(g.target) if type(x) is ast.Name}
                tests = [t for g in n.generators for t in g.ifs if calls(t, "startswith")]
                if tests and type(n) is not ast.DictComp and type(n.elt) is ast.Name and n.elt.id in ids:
                    # `{i for i, p in pieces.items() if p.startswith("▁")}`: a leading-space table (the ids of
                    # the spaced pieces; `sum(1 for p in pieces if p.startswith("▁"))` is a count, no table)
                    yield Element(tests[0], n.lineno)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "append" and n.args:
                yield Element(n.args[0], n.lineno)


def lone_decoders(m) -> set[str]:
    """Names of the module's helpers that return the size of a token decoded alone
    (`return len(sp.decode([tid]).encode())`) with no byte-fallback case (`is_byte`): a table
    filled through them, or through a name bound to one of them (`measure = surface_bytes if
    mode == "surface" else piece_bytes`), sizes byte tokens by U+FFFD."""
    return {f.name for f in m.functions.values() if f.qualname != "<module>" and not f.is_method and not calls(f.node, "is_byte")
            and any(type(r) is ast.Return and r.value is not None and decodes_one(r.value) and _sized(r.value) for r in f.nodes)}


def _sized(e) -> bool:
    return any(type(c) is ast.Call and type(c.func) is ast.Name and c.func.id == "len" for c in lb.walk(e))


_MARKER = ("bos", "eos")  # `bos_id`, `BOS_ID`, `sp.bos_id()`, `eos_token`


def marker_bytes_raised(m, piece_calls) -> list:
    """(function, statement) where a per-token byte table that a piece-reading function fills
    with lengths (`nbytes[i] = len(piece.encode())`) gets bytes added for the document marker
    afterwards (`nbytes[bos_id] += gap`): BOS is a control token of 0 bytes, so every document
    would add bytes that no text holds. (Setting the marker's entry of a flag table,
    `boundary[bos_id] = 1`, is how a boundary table is made.)"""
    sized = {lb.src(st.targets[0].value) for f in m.functions.values() if f.qualname != "<module>"
             and any(c in piece_calls for c in m.under(f, m.nodes_of(ast.Call)))
             for st in table_stores(f.node.body) if type(st) is ast.Assign and type(st.targets[0]) is ast.Subscript
             and _sized(st.value)}
    return [(f, st) for f in m.functions.values() for st in m.under(f, m.nodes_of(ast.AugAssign))
            if type(st.op) is ast.Add and type(st.target) is ast.Subscript and lb.src(st.target.value) in sized
            and any(w in lb.src(st.target.slice).lower() for w in _MARKER)]
