"""Syntax newer than the running Python, read through libcst.

The analysis walks `ast` trees, and `ast` parses only the grammar of the interpreter that
runs the audit. Submissions written for Python 3.12+ use f-strings that nest their own
quotes or hold backslashes (PEP 701: `f"{", ".join(xs)}"`, common in golfed and packed
records) and type parameters (PEP 695). Before this bridge such lines were replaced by
`pass` and went unaudited, and code hidden on them went unseen.

libcst parses every Python 3 grammar itself. A file that `ast` rejects is parsed with
libcst, each construct this Python cannot read is rewritten into an equivalent one it
can, on the same lines, and `ast` parses the result:
- an f-string this Python rejects becomes a concatenation of its parts,
  `("a" + format(x, "02d") + ", ".join(xs))`: the same values flow into the same string,
  and every newline of the original stays where it was (text parts keep their quotes,
  expressions their own text);
- type parameters are dropped (`def f[T](x: T)` -> `def f(x: T)`), and `type P = X`
  becomes `P = X`.
Line numbers therefore still point into the submitted file.
"""

from __future__ import annotations

import ast

import libcst as cst

_EMPTY = cst.Module(body=[])


def bridged(source: str) -> str | None:
    """The source with the constructs this Python cannot parse rewritten (same lines), or
    None when libcst cannot parse it either or nothing needed rewriting."""
    try:
        out = cst.parse_module(source).visit(_Older()).code
    except Exception:  # noqa: BLE001 - libcst refuses some inputs with its own validation errors: no bridge then
        return None
    return out if out != source and out.count("\n") == source.count("\n") else None


def _code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


def parses(code: str, mode: str = "exec") -> bool:
    """This Python's parser reads the code."""
    try:
        ast.parse(code, mode=mode)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


class _Older(cst.CSTTransformer):
    def leave_FormattedString(self, original, updated):
        code = _code(updated)
        if parses(f"({code})", "eval"):
            return updated  # this Python reads it as it is
        quote, raw = updated.start[updated.start.lower().index("f") + 1:], "r" in updated.start.lower()
        parts = [_part(p, quote, raw) for p in updated.parts] or [f"{'r' if raw else ''}{quote}{updated.end}"]
        return cst.parse_expression("(" + " + ".join(parts) + ")")

    def visit_ConcatenatedString(self, node) -> bool:
        return False  # its pieces are rewritten in leave_ConcatenatedString (libcst refuses a parenthesized piece)

    def leave_ConcatenatedString(self, original, updated):
        """`f"a{x}" "b"`: when a piece must be rewritten, the pieces are joined by `+` across
        the same whitespace (a line break in it stays)."""
        pieces, gaps, node = [], [], updated
        while isinstance(node, cst.ConcatenatedString):
            pieces.append(node.left)
            gaps.append(_code(node.whitespace_between))
            node = node.right
        pieces.append(node)
        new = [p.visit(self) for p in pieces]
        if all(_code(n) == _code(p) for n, p in zip(new, pieces)):
            return updated
        code = _code(new[0]) + "".join(f" +{gap or ' '}{_code(n)}" for gap, n in zip(gaps, new[1:]))
        return cst.parse_expression(f"({code})")

    def leave_FunctionDef(self, original, updated):
        return updated.with_changes(type_parameters=None) if getattr(updated, "type_parameters", None) else updated

    def leave_ClassDef(self, original, updated):
        return updated.with_changes(type_parameters=None) if getattr(updated, "type_parameters", None) else updated

    def leave_TypeAlias(self, original, updated):
        return cst.Assign(targets=[cst.AssignTarget(target=updated.name)], value=updated.value)


def _part(p, quote: str, raw: bool) -> str:
    """Python source for one part of an f-string: its text as a plain string literal in the
    same quotes (`{{` unescaped), or its expression converted and formatted."""
    if isinstance(p, cst.FormattedStringText):
        return f"{'r' if raw else ''}{quote}{p.value.replace('{{', '{').replace('}}', '}')}{quote}"
    expr = _code(p.expression)
    value = {"r": f"repr({expr})", "a": f"ascii({expr})", "s": f"str({expr})"}.get(p.conversion or "", f"({expr})")
    prefix = ""
    if getattr(p, "equal", None) is not None:  # `f"{x=}"`: the expression's text, then its repr
        prefix = f"{quote}{expr.replace(quote, '')}={quote} + "
        value = value if p.conversion or p.format_spec else f"repr({expr})"
    if p.format_spec:
        spec = " + ".join(_part(s, quote, raw) for s in p.format_spec) or f"{quote}{quote}"
        return f"{prefix}format({value}, {spec})"
    return f"{prefix}format({value}, {quote}{quote})"
