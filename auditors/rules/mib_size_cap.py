"""A size check against 16 MiB instead of 16,000,000 bytes (RULES.md §1.1).

The artifact cap is 16,000,000 bytes in decimal. Many submissions checked (or pruned
to, or reported against) 16 MiB = 16,777,216 bytes, which lets an artifact between
the two pass the script's own check while it is over the cap (#1698, #861; #1835 was
ruled ineligible at 16,071,321 bytes). The rule flags a comparison of a value with
16 MiB, written as a constant expression (`16 * 1024 * 1024`, `16 << 20`,
`16 * 2**20`, `16_777_216`), directly or through a name bound to one. Whether the
artifact really lands between the two sizes is decided by the logs (the record
checks), so this is a warning: the script's own guard does not protect the cap.
Legal counterparts: the same check against 16_000_000 (or 16e6); 16 MiB used as a
hash table size or a bucket count, which is never compared with a size.
"""

from __future__ import annotations

import ast

from auditors.model import RuleInfo
from auditors.rules import by_function, guards_of, raw

RULE = RuleInfo("mib-size-cap", "oversize_artifact", "size checked against 16 MiB, not 16,000,000 bytes", "RULES.md §1.1")

MIB16 = 16 * 1024 * 1024
_OPS = {ast.Mult: lambda a, b: a * b, ast.Pow: lambda a, b: a ** b if 0 <= b <= 64 else None,
        ast.LShift: lambda a, b: a << b if 0 <= b <= 64 else None}


def _value(f, e, depth: int = 0):
    """The integer a constant expression (or a name bound once to one) evaluates to, or None."""
    if depth > 4:
        return None
    if type(e) is ast.Constant and type(e.value) in (int, float):
        return e.value
    if type(e) is ast.BinOp and type(e.op) in _OPS:
        a, b = _value(f, e.left, depth + 1), _value(f, e.right, depth + 1)
        return _OPS[type(e.op)](a, b) if isinstance(a, int) and isinstance(b, int) else None
    if type(e) is ast.Call and type(e.func) is ast.Name and e.func.id in ("int", "float") and e.args:
        return _value(f, e.args[0], depth + 1)
    if type(e) is ast.Name:
        bound = f.binding(e.id)
        return _value(f, bound, depth + 1) if bound is not None else None
    return None


def check(m):
    out = []
    for f, node in by_function(m, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
            continue
        values = [_value(f, s) for s in (node.left, node.comparators[0])]
        if MIB16 in values and None in values:
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "warning", "medium",
                           f"`{ast.unparse(node)}` checks a size against 16 MiB (16,777,216 bytes); the cap is "
                           "16,000,000 bytes, so an artifact between the two passes this check and is over the cap"))
    return out
