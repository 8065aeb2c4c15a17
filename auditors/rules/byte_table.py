"""Byte accounting of the BPB denominator (RULES.md §2 Section V, §7; #1184, #1698).

The canonical tables (`build_sentencepiece_luts`, #414): a byte-fallback token is 1
byte; the leading "▁" is not part of a piece's base bytes but one byte added at
evaluation when the previous token is not a boundary (`has_leading_space`). Checked
in any function that builds per-token tables from `id_to_piece`:
- a piece's bytes counted with its "▁" (unstripped, or `+ 1`) while the same piece is
  also flagged as having a leading space: the space is counted twice (#1698);
- byte-fallback tokens not special-cased (`is_byte`), or given a size other than 1
  (also through a module constant): `len("<0x41>")` is 6, U+FFFD is 3 (#1698, Scylla
  #1184 stored 3); sizes found by decoding each token alone (`decode([i])`) give U+FFFD.
Tables built by comprehensions count as tables: their element is the stored value.
Tables loaded from data files (#1184's npz) are not checked here.
"""

from __future__ import annotations

import ast
import re

from auditors import labels as lb
from auditors import piece_tables as pt
from auditors.model import RuleInfo
from auditors.rules import by_function, guards_of, raw
from auditors.lossy_bytes import byte_decoded_lossily
from auditors.space_boundary import space_without_boundary

RULE = RuleInfo("byte-table-miscount", "tokenizer_byte_miscount", "BPB byte table deviates from canonical semantics",
                "RULES.md §2 Section V, §7 (#1184, #1698; canonical #414)")


def _constant_value(m, value):
    """A number written through a module constant: `BYTE_SIZE`, `SIZES["byte"]`."""
    module = m.functions["<module>"]
    if isinstance(value, ast.Name):
        bound = module.defs.get(value.id)
        return bound.value if isinstance(bound, ast.Constant) else None
    if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and isinstance(value.slice, ast.Constant):
        table = module.defs.get(value.value.id)
        if isinstance(table, ast.Dict):
            for k, v in zip(table.keys, table.values):
                if isinstance(k, ast.Constant) and k.value == value.slice.value and isinstance(v, ast.Constant):
                    return v.value
    return None


def _sizers(m, piece_calls) -> set[str]:
    """Names of helpers that return a piece's byte length (`return len(body.encode()), lead`
    of `sp.id_to_piece(i)`): a table filled from their result counts pieces too."""
    out = set()
    lines = sorted(n.lineno for n in piece_calls)
    for f in m.functions.values():  # (may_hold first: indexing every function's nodes is what costs)
        if f.qualname == "<module>" or not m.may_hold(f.node, lines) or not any(n in piece_calls for n in f.nodes):
            continue
        pieces = {t.id for n in f.nodes if isinstance(n, ast.Assign) and pt.calls(n.value, "id_to_piece")
                  for t in n.targets if isinstance(t, ast.Name)}
        pieces |= {t.id for n in f.nodes if isinstance(n, ast.Assign)
                   and {x.id for x in lb.walk(n.value) if isinstance(x, ast.Name)} & pieces for t in n.targets if isinstance(t, ast.Name)}
        if any(isinstance(r, ast.Return) and r.value is not None and pt.counts_piece(r.value, pieces) for r in f.nodes):
            out.add(f.name)
    # helpers handed the piece (`piece_size(sp.id_to_piece(i))`) that return its length
    handed = {c.func.id for c in m.nodes_of(ast.Call) if isinstance(c.func, ast.Name) and any(a in piece_calls for a in c.args)}
    for name in handed - out:
        f = next((g for g in m.by_name.get(name, []) if not g.is_method), None)
        if f is None:
            continue
        pieces = set(f.params)
        pieces |= {t.id for n in f.nodes if isinstance(n, ast.Assign)
                   and {x.id for x in lb.walk(n.value) if isinstance(x, ast.Name)} & pieces for t in n.targets if isinstance(t, ast.Name)}
        if any(isinstance(r, ast.Return) and r.value is not None and pt.counts_piece(r.value, pieces) for r in f.nodes):
            out.add(f.name)
    return out


_CONTROL_TESTS = ("is_control", "IsControl")


def _skips_control(m) -> bool:
    """Control tokens (`<s>`, `</s>`) are given no bytes somewhere: a control test decides
    something (an `if`, a conditional expression, a comprehension's filter or `filter(lambda i:
    not sp.is_control(i), ids)`, a masked store
    `base[special] = 0`, a `where`), or their pieces are written as strings. The test may be
    `sp.is_control(i)`, a helper that makes it, or a name bound to either; one only stored
    (`boundary[i] = sp.is_control(i)`) or made by a helper nobody calls decides no size."""
    if any(_CONTROL_PIECE.search(line.split("#", 1)[0]) for line in m.lines):
        return True
    asked = [c for c in m.nodes_of(ast.Call) if lb.call_name(c.func) in _CONTROL_TESTS]
    if not asked:
        return False  # (many files never ask: spare the walks below)
    tests = set(_CONTROL_TESTS) | {f.name for f in m.functions.values() if f.qualname != "<module>"  # (and helpers that ask)
                                   and any(f.node.lineno <= c.lineno <= f.node.end_lineno for c in asked)}
    calls = [c for c in m.nodes_of(ast.Call) if lb.call_name(c.func) in tests]
    if not calls:
        return False
    lines = {c.lineno for c in calls}

    def tested(e) -> bool:
        if not any(e.lineno <= line <= e.end_lineno for line in lines):
            return False  # (no test call on its lines: no walk)
        return any(type(c) is ast.Call and lb.call_name(c.func) in tests for c in lb.walk(e))
    bound = {t.id for a in m.nodes_of(ast.Assign) if tested(a.value) for t in a.targets if type(t) is ast.Name}

    def decides(e) -> bool:
        return tested(e) or any(type(n) is ast.Name and n.id in bound for n in lb.walk(e))
    return any(decides(n.test) for kind in (ast.If, ast.IfExp, ast.While) for n in m.nodes_of(kind)) \
        or any(decides(t) for g in m.nodes_of(ast.comprehension) for t in g.ifs) \
        or any(lb.call_name(c.func) in ("filter", "filterfalse") and c.args and decides(c.args[0])
               for c in m.nodes_of(ast.Call)) \
        or any(type(t) is ast.Subscript and decides(t.slice) for a in m.nodes_of(ast.Assign) for t in a.targets) \
        or any(lb.call_name(c.func) in ("where", "masked_fill", "masked_fill_") and any(map(decides, c.args))
               for c in m.nodes_of(ast.Call))


_CONTROL_PIECE = re.compile(r"""["']</?s>["']""")  # the piece written as a string, not mentioned in a comment


def check(m):
    piece_calls = {n for n in m.nodes_of(ast.Call) if isinstance(n.func, ast.Attribute)
                   and (n.func.attr == "id_to_piece" or pt.decode_call(n))}
    if not piece_calls:
        return space_without_boundary(m, RULE)
    sizers = _sizers(m, piece_calls)
    sizing = {n for n in m.nodes_of(ast.Call) if (type(n.func) is ast.Name and n.func.id in sizers)
              or (type(n.func) is ast.Attribute and type(n.func.value) is ast.Name and n.func.value.id == "self"
                  and n.func.attr in sizers)}  # (`self._piece_bytes(i)`: a method of the table's class)
    lines = sorted(n.lineno for n in piece_calls | sizing)
    out = []
    control_reported = False
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines) or not any(n in piece_calls or n in sizing for n in f.nodes):
            continue
        sized = [s for s in pt.table_stores(f.node.body) if isinstance(s.value, ast.Call) and s.value in sizing]
        if f.name in sizers:
            continue  # judged where its result is stored
        if sized and not pt.calls(f.node, "is_byte") and not any(pt.calls(m.functions[q].node, "is_byte") for q in m.functions
                                                               if m.functions[q].name in sizers):
            out.append(raw(RULE, f, sized[0], guards_of(f, sized[0].lineno), "error", "medium",
                           "byte-fallback tokens are not special-cased (is_byte): their pieces '<0x..>' are counted as "
                           "6 bytes, not 1"))
        pieces = {t.id for n in f.nodes if isinstance(n, ast.Assign) and pt.calls(n.value, "id_to_piece")
                  for t in n.targets if isinstance(t, ast.Name)}
        derived = {t.id for n in f.nodes if isinstance(n, ast.Assign) and not pt.strips(n.value)
                   and {x.id for x in lb.walk(n.value) if isinstance(x, ast.Name)} & pieces for t in n.targets if isinstance(t, ast.Name)}
        restripped = {t.id for n in f.nodes if isinstance(n, ast.Assign) and pt.strips(n.value) for t in n.targets if isinstance(t, ast.Name)}
        unstripped = (pieces | derived) - restripped
        named = m.once("space names", pt.space_names)
        space_ifs = [n for n in f.nodes if isinstance(n, ast.If) and pt.is_space_test(n.test, named)]
        flagged = set()
        stores = list(pt.table_stores(f.node.body))
        in_space_ifs = {st.lineno for b in space_ifs for st in pt.table_stores(b.body)}
        # `if space[i]: piece = piece[1:]` (the test reads the leading-space entry just stored) before
        # the store: the piece it sizes has lost its '▁'
        flags = {lb.src(st.targets[0]) for st in stores if isinstance(st, ast.Assign) and pt.is_space_test(st.value, named)}
        strips_before = [(s.lineno, t.id) for b in f.nodes if isinstance(b, ast.If) and (
            b in space_ifs or lb.src(b.test) in flags) for s in b.body if isinstance(s, ast.Assign)
            and pt.strips(s.value) for t in s.targets if isinstance(t, ast.Name)]
        if any(pt.is_space_test(e.value, named) for e in stores):  # `space[i] = piece.startswith("▁")`, or a comprehension of it
            stripped = {st.lineno for st in stores if pt.strips(st.value)}  # (the lengths and, beside them, less the '▁')
            for e in (st for st in stores if st.lineno not in in_space_ifs | stripped and not isinstance(st.value, ast.Tuple)):
                kept = (pieces | derived) - {name for line, name in strips_before if line < e.lineno}
                if not pt.is_space_test(e.value, named) and pt.counts_piece(e.value, kept):
                    flagged.add(e.lineno)
                    out.append(raw(RULE, f, e, guards_of(f, e.lineno), "error", "high",
                                   "base bytes count each piece with its '\u2581' while the leading-space table built "
                                   "beside them counts it again"))
        for branch in space_ifs:
            flags_space = any(isinstance(s.value, ast.Constant) and s.value.value is True for s in pt.table_stores(branch.body))
            for st in pt.table_stores(branch.body):
                if flags_space and pt.counts_piece(st.value, pieces | derived) and not (isinstance(st.value, ast.Constant)):
                    flagged.add(st.lineno)
                    out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "high",
                                   "a piece with a leading '\u2581' is given its space byte here and is also flagged in the "
                                   "leading-space table, which adds it again at evaluation"))
        if space_ifs and unstripped:
            inside = {s.lineno for b in space_ifs for s in pt.table_stores(b.body)}
            for st in pt.table_stores(f.node.body):
                if st.lineno not in inside and st.lineno not in flagged and pt.counts_piece(st.value, unstripped) \
                        and not any(_assigns_after_strip(b) for b in space_ifs):
                    out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "medium",
                                   "base bytes count the piece with its '\u2581' while the leading-space table counts it again"))
        for st in _never_set_flags(f) if space_ifs or any(pt.is_space_test(e.value, named) for e in stores) else ():
            # (with the leading-space table filled beside it, a table never set is the boundary table)
            out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "medium",
                           f"`{lb.src(st.targets[0])}`, returned beside the leading-space table, starts all False and is "
                           "never set: as the boundary table it makes BOS and the other control tokens no boundaries, so "
                           "the first token of each document gains a space byte"))
        bytes_ifs = [n for n in f.nodes if isinstance(n, ast.If) and pt.calls(n.test, "is_byte")]
        decoders = m.once("lone decoders", pt.lone_decoders)
        surfaces = {t.id for n in f.nodes if isinstance(n, ast.Assign) and (pt.decodes_one(n.value) or decoders and {
                    x.id for x in lb.walk(n.value) if type(x) is ast.Name} & decoders)
                    for t in n.targets if isinstance(t, ast.Name)} | decoders  # `surface = sp.decode_ids([i])`, sized later
        decoded = next((s for s in pt.table_stores(f.node.body) if pt.decodes_one(s.value)
                        or {x.id for x in lb.walk(s.value) if isinstance(x, ast.Name)} & surfaces), None)
        for hit in _byte_piece_decoded(f, bytes_ifs):
            out.append(raw(RULE, f, hit, guards_of(f, hit.lineno), "error", "high",
                           "a byte-fallback token's text is found by decoding it alone, which gives U+FFFD (3 bytes), "
                           "not its 1 byte"))
        if decoded is not None and not pt.calls(decoded.value, "is_byte") and not any(
                b.lineno <= decoded.lineno <= b.end_lineno
                or (b.lineno < decoded.lineno and any(type(x) in (ast.Continue, ast.Return) for x in b.body))
                for b in bytes_ifs):
            # (an `is_byte` test elsewhere in the function, for the leading-space table, sizes nothing here; one
            # that sizes byte tokens and skips them, `if sp.is_byte(i): base[i] = 1; continue`, does)
            out.append(raw(RULE, f, decoded, guards_of(f, decoded.lineno), "error", "high",
                           "token bytes counted by decoding each token alone: a byte-fallback token decodes to "
                           "U+FFFD (3 bytes), not its 1 byte"))
        elif not bytes_ifs and not _tests_is_byte(f.node) and any(pt.sizes_piece(s.value, pieces | derived | restripped) for s in pt.table_stores(f.node.body)):
            out.append(raw(RULE, f, f.node, None, "error", "medium",
                           "byte-fallback tokens are not special-cased (is_byte): their pieces '<0x..>' are counted as 6 bytes, not 1"))
        counting = [s for s in pt.table_stores(f.node.body) if pt.counts_piece(s.value, pieces | derived | restripped)]
        if counting and bytes_ifs and not control_reported and not _skips_control(m):
            control_reported = True
            out.append(raw(RULE, f, counting[0], guards_of(f, counting[0].lineno), "error", "medium",
                           "control tokens (<s>, </s>) are not special-cased (is_control): their pieces are counted as "
                           "bytes and they are not boundaries, so a document's first token gains a space byte"))
        for b in bytes_ifs:
            for st in pt.table_stores(b.body):
                named = _constant_value(m, st.value)
                numeric = (isinstance(st.value, ast.Constant) and isinstance(st.value.value, (int, float))) or isinstance(st.value, ast.BinOp) or (
                    isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name) and st.value.func.id == "len") or (
                    isinstance(named, (int, float)) and named not in (1, True, False, 0))
                if numeric and not (isinstance(st.value, ast.Constant) and st.value.value in (1, True, False, 0)) \
                        and not _one_decoded_byte(st.value, f):
                    out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "high",
                                   f"a byte-fallback token is given `{lb.src(st.value)}` bytes; it is exactly 1 byte"))
    if not control_reported:
        out += _control_sized_by_helper(m, sizers, sizing)
    out += [raw(RULE, f, st, guards_of(f, st.lineno), "error", "medium", "adds bytes to the document marker's entry (BOS is a "
                "control token of 0 bytes): every document counts bytes that no text holds") for f, st in pt.marker_bytes_raised(m, piece_calls)]
    return out + _bytes_never_handled(m, piece_calls, {r.function for r in out} | sizers) + _byte_entry_sized(m) \
        + space_without_boundary(m, RULE) + _byte_branch_length(m, piece_calls) + _byte_test_never_holds(m) \
        + byte_decoded_lossily(m, _piece_functions(m, piece_calls), RULE)


def _byte_test_never_holds(m) -> list:
    """`len(piece) == 5 and piece.startswith("<0x")`: byte-fallback pieces are written `<0xHH>`,
    six characters, so a test for another length never holds and every byte token falls
    through to the normal pieces, sized by its text (6 bytes)."""
    out = []
    for f, node in by_function(m, ast.BoolOp):
        if type(node.op) is not ast.And:
            continue
        prefixed = {lb.src(c.func.value) for c in node.values if type(c) is ast.Call and type(c.func) is ast.Attribute
                    and c.func.attr == "startswith" and c.args and type(c.args[0]) is ast.Constant
                    and str(c.args[0].value).lower() == "<0x"}
        for c in node.values:
            if prefixed and type(c) is ast.Compare and len(c.ops) == 1 and type(c.ops[0]) is ast.Eq \
                    and type(c.left) is ast.Call and lb.call_name(c.left.func) == "len" and len(c.left.args) == 1 \
                    and lb.src(c.left.args[0]) in prefixed and type(c.comparators[0]) is ast.Constant \
                    and c.comparators[0].value != 6:
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "high",
                               f"tests byte-fallback pieces by `{lb.src(c)}`, but they are written `<0xHH>` (6 characters): "
                               "the test never holds, and each byte token is sized by its text instead of 1 byte"))
    return out


def _piece_functions(m, piece_calls) -> list:
    """The functions (not the module body) that read pieces (`id_to_piece`, a lone decode)."""
    return [f for f in m.functions.values()
            if f.qualname != "<module>" and any(c in piece_calls for c in m.under(f, m.nodes_of(ast.Call)))]


def _one_decoded_byte(e, f=None) -> bool:
    """`len(bytes.fromhex(piece[3:5]))` (two hex digits) or `len(bytes([int(h, 16)]))`: 1; also
    the length of a name every assignment of f binds to such bytes (or to `b""` on a failed
    parse: `try: bs = bytes([int(p[3:-1], 16)]) except ValueError: bs = b""`)."""
    if type(e) is not ast.Call or lb.call_name(e.func) != "len" or len(e.args) != 1:
        return False
    if type(e.args[0]) is ast.Name and f is not None:
        bound = [a.value for a in f.nodes if type(a) is ast.Assign
                 and any(type(t) is ast.Name and t.id == e.args[0].id for t in a.targets)]
        return bool(bound) and all(type(v) is ast.Constant and v.value == b"" or _one_decoded_byte(
            ast.Call(ast.Name("len", ast.Load()), [v], [])) for v in bound)
    if type(e.args[0]) is not ast.Call:
        return False
    inner = e.args[0]
    if lb.dotted(inner.func) == "bytes.fromhex" and len(inner.args) == 1 and type(inner.args[0]) is ast.Subscript:
        sl = inner.args[0].slice
        return type(sl) is ast.Slice and all(type(b) is ast.Constant and type(b.value) is int for b in (sl.lower, sl.upper)) \
            and sl.upper.value - sl.lower.value == 2 and sl.step is None
    return lb.call_name(inner.func) == "bytes" and len(inner.args) == 1 and type(inner.args[0]) in (ast.List, ast.Tuple) \
        and len(inner.args[0].elts) == 1


def _byte_branch_length(m, piece_calls) -> list:
    """A sizing helper whose byte-token branch returns the piece's length (`if sp.is_byte(i):
    return len(piece.encode()), False`): '<0x41>' is 6 bytes there, not 1."""
    out = []
    for f in _piece_functions(m, piece_calls):
        for b in m.under(f, m.nodes_of(ast.If)):
            if not pt.calls(b.test, "is_byte"):
                continue
            for st in b.body:
                size = st.value.elts[0] if type(st) is ast.Return and type(st.value) is ast.Tuple and st.value.elts \
                    else st.value if type(st) is ast.Return else None
                if type(size) is ast.Call and type(size.func) is ast.Name and size.func.id == "len":
                    out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "high",
                                   f"a byte-fallback token is given `{lb.src(size)}` bytes (its piece '<0x..>' is 6); "
                                   "it is exactly 1 byte"))
    return out




def _control_sized_by_helper(m, sizers: set[str], sizing: set) -> list:
    """A helper that sizes pieces, with byte-fallback tokens handled (`if sp.is_byte(i): return 1`)
    but control tokens not, fills the table: `<s>` is given len("<s>") = 3 bytes."""
    handled = [f for f in m.functions.values() if f.name in sizers and pt.calls(f.node, "is_byte")]
    stores = [(f, st) for f in m.functions.values() if f.name not in sizers and m.under(f, list(sizing))
              for st in pt.table_stores(f.node.body) if isinstance(st, ast.Assign) and st.value in sizing]
    if not handled or not stores or _skips_control(m):
        return []
    f, st = stores[0]
    return [raw(RULE, f, st, guards_of(f, st.lineno), "error", "medium",
                f"control tokens (<s>, </s>) are sized by `{lb.src(st.value.func)}` like any piece (no is_control test decides "
                "their size): `<s>` counts as 3 bytes")]


def _byte_entry_sized(m) -> list:
    """A per-kind sizing table whose entry for byte tokens measures the piece text
    (`{"byte": lambda piece: len(piece.encode())}`): '<0x41>' is 6 bytes there, not 1."""
    out = []
    for d in m.nodes_of(ast.Dict):
        for k, v in zip(d.keys, d.values):
            if type(k) is ast.Constant and isinstance(k.value, str) and k.value.lower() in ("byte", "bytes", "byte_fallback") \
                    and type(v) is ast.Lambda and v.args.args and any(
                        type(n) is ast.Call and type(n.func) is ast.Name and n.func.id == "len" and any(
                            type(x) is ast.Name and x.id == v.args.args[0].arg for x in lb.walk(n)) for n in lb.walk(v.body)):
                f = next((g for g in m.functions.values() if g.qualname != "<module>"
                          and g.node.lineno <= v.lineno <= g.node.end_lineno), m.functions["<module>"])
                out.append(raw(RULE, f, v, guards_of(f, v.lineno), "error", "medium",
                               f"the sizing entry for byte tokens (`{k.value}`) measures the piece text: a byte-fallback "
                               "piece '<0x..>' counts 6 bytes, not 1"))
    return out


_BYTE_MARKS = ("is_byte", "IsByte", "<0x", "byte_fallback")


def _bytes_never_handled(m, piece_calls, reported: set) -> list:
    """Piece sizes taken by a lambda applied to all the pieces at once (`size =
    np.vectorize(lambda s: len(s.encode()))`, then `base[:n] = size(pieces)`), in a function
    that, with the functions it calls, never tells a byte-fallback token apart (no
    `is_byte`, no '<0x..>' test): those tokens count 6 bytes, not 1. (Tables filled one
    entry at a time are judged by the checks above.)"""
    out = []
    def marked(g) -> bool:
        return any(mark in line for line in m.lines[g.node.lineno - 1:g.node.end_lineno] for mark in _BYTE_MARKS)
    for f in _piece_functions(m, piece_calls):
        if f.qualname in reported or f.name in reported or marked(f) or any(marked(g) for g in m.callees(f)):
            continue
        names, stored = _piece_names(m, f), _stored_sizers(m, f)
        for n in m.under(f, m.nodes_of(ast.Call)):
            if type(n.func) is ast.Name and n.func.id == "len" and n.args and pt.calls(n.args[0], "encode") \
                    and any(type(x) is ast.Name and x.id in names for x in lb.walk(n.args[0])) \
                    and any(lam.lineno <= n.lineno <= lam.end_lineno for lam in stored):
                out.append(raw(RULE, f, n, guards_of(f, n.lineno), "error", "medium",
                               "piece sizes are taken from the pieces' text and nothing here tells a byte-fallback "
                               "token apart (is_byte): its piece '<0x..>' counts 6 bytes, not 1"))
                break
    return out


def _stored_sizers(m, f) -> list:
    """Lambdas bound to a name whose call on the pieces fills a table (`base[:n] =
    np.where(special, 0, size(pieces))`): sizes computed for the whole vocabulary at once."""
    stored = {c.func.id for a in m.under(f, m.nodes_of(ast.Assign)) if any(type(t) is ast.Subscript for t in a.targets)
              for c in lb.walk(a.value) if type(c) is ast.Call and type(c.func) is ast.Name}
    return [lam for a in m.under(f, m.nodes_of(ast.Assign)) if any(type(t) is ast.Name and t.id in stored for t in a.targets)
            for lam in lb.walk(a.value) if type(lam) is ast.Lambda]


def _piece_names(m, f) -> set[str]:
    """Names that hold one piece or the pieces in f: bound to an `id_to_piece` result, the
    variable of a loop or comprehension over them, or the parameter of a lambda that f
    applies to them (`size = np.vectorize(lambda s: ...)`, then `size(pieces)`)."""
    held = {t.id for n in f.nodes if type(n) is ast.Assign and pt.calls(n.value, "id_to_piece")
            for t in n.targets if type(t) is ast.Name}
    def mentions(e) -> bool:
        return any(type(x) is ast.Name and x.id in held for x in lb.walk(e))
    for n in f.nodes:
        if type(n) in (ast.For, ast.comprehension) and mentions(n.iter):
            last = [x.id for x in lb.walk(n.target) if type(x) is ast.Name][-1:]
            held.update(last)
    applied = {c.func.id for c in m.under(f, m.nodes_of(ast.Call)) if type(c.func) is ast.Name and any(map(mentions, c.args))}
    for n in f.nodes:
        if type(n) is ast.Assign and any(type(t) is ast.Name and t.id in applied for t in n.targets):
            held.update(a.arg for lam in lb.walk(n.value) if type(lam) is ast.Lambda for a in lam.args.args[:1])
    return held


def _byte_piece_decoded(f, bytes_ifs) -> list:
    """`if sp.is_byte(i): return sp.decode_ids([i])` (or a name bound to it and sized with
    `len`): the branch meant for byte tokens sizes them by their lone decode."""
    sized = {a.id for n in f.nodes if type(n) is ast.Call and lb.call_name(n.func) == "len"
             for a in lb.walk(n) if type(a) is ast.Name}
    out = []
    for b in bytes_ifs:
        for st in b.body:
            hit = next((n for n in lb.walk(st) if pt.decode_call(n)), None)
            if hit is not None and (type(st) is ast.Return or (type(st) is ast.Assign and any(
                    type(t) is ast.Name and t.id in sized for t in st.targets))):
                out.append(hit)
    return out


def _all_false(value) -> bool:
    """`np.zeros(n, bool)`, `torch.zeros(n, dtype=torch.bool)`, `[False] * n`."""
    if type(value) is ast.BinOp and type(value.op) is ast.Mult and type(value.left) is ast.List \
            and [lb.src(e) for e in value.left.elts] == ["False"]:
        return True
    if type(value) is not ast.Call or lb.call_name(value.func) not in ("zeros", "zeros_like"):
        return False
    dtype = [*value.args[1:2], *(k.value for k in value.keywords if k.arg == "dtype")]
    return any(lb.src(d).rsplit(".", 1)[-1] in ("bool", "bool_", "bool8") for d in dtype)


def _never_set_flags(f) -> list:
    """Assignments of an all-False table that the function returns (as is or converted)
    without ever storing into it."""
    returned = {n.id for r in f.nodes if type(r) is ast.Return and r.value is not None
                for n in lb.walk(r.value) if type(n) is ast.Name}
    targets = [t for n in f.nodes if isinstance(n, (ast.Assign, ast.AugAssign))
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])]
    targets += [e for t in targets if type(t) is ast.Tuple for e in t.elts]  # `sizes[i], lead[i] = ...`
    stored = {lb.src(t.value) for t in targets if type(t) is ast.Subscript} | {
        lb.src(c.func.value) for c in f.nodes if type(c) is ast.Call and type(c.func) is ast.Attribute
        and c.func.attr in ("fill_", "fill", "__setitem__", "index_fill_", "masked_fill_", "put_", "copy_")}
    return [n for n in f.nodes if type(n) is ast.Assign and len(n.targets) == 1 and type(n.targets[0]) is ast.Name
            and n.targets[0].id in returned and n.targets[0].id not in stored and _all_false(n.value)
            and sum(1 for m in f.nodes if type(m) is ast.Assign and any(lb.src(t) == n.targets[0].id for t in m.targets)) == 1]


def _tests_is_byte(node) -> bool:
    """is_byte decides something: it stands in a test (`if`, a conditional expression, a
    comprehension filter) or chooses values (`where(is_byte, 1, sizes)`); a byte token only
    marked in another table (`boundary[i] = sp.is_byte(i)`) still gets its piece's length."""
    flags = {t.id for n in lb.walk(node) if isinstance(n, ast.Assign) and pt.calls(n.value, "is_byte")
             for t in n.targets if isinstance(t, ast.Name)}  # `is_byte = np.array([sp.is_byte(i) ...])`
    for g in lb.walk(node):  # `for p, b in zip(pieces, is_byte)`: b is the flag of p
        if isinstance(g, ast.comprehension) and type(g.target) is ast.Tuple and type(g.iter) is ast.Call \
                and lb.call_name(g.iter.func) == "zip":
            flags |= {t.id for t, a in zip(g.target.elts, g.iter.args) if type(t) is ast.Name and type(a) is ast.Name
                      and a.id in flags}
    for n in lb.walk(node):
        tests = [n.test] if isinstance(n, (ast.If, ast.IfExp, ast.While)) else list(n.ifs) if isinstance(n, ast.comprehension) else \
            n.args[:1] if isinstance(n, ast.Call) and lb.call_name(n.func) in ("where", "select") else \
            [t.slice for t in n.targets if isinstance(t, ast.Subscript)] if isinstance(n, ast.Assign) else []
        # (`base[is_byte] = 1`: the byte tokens' entries set through a mask)
        if any(pt.calls(t, "is_byte") or _byte_text_test(t) or any(isinstance(x, ast.Name) and x.id in flags for x in lb.walk(t))
               for t in tests):
            return True
    return False


def _byte_text_test(test) -> bool:
    """A test that recognises byte-fallback pieces by their text (`piece.startswith("<0x")`,
    `re.fullmatch(r"<0x[0-9A-F]{2}>", piece)`); one for the wrong length is reported by
    `_byte_test_never_holds`."""
    return any(type(c) is ast.Constant and isinstance(c.value, str) and c.value.lower().startswith("<0x")
               for c in lb.walk(test))


def _assigns_after_strip(branch: ast.If) -> bool:
    """The space branch re-sets the base bytes from the stripped piece (canonical order)."""
    return any(pt.strips(s.value) for s in pt.table_stores(branch.body))
