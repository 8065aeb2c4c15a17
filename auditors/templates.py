"""File patterns a helper assembles from its arguments, evaluated per call.

`shard_pattern(root, "train")` with `suffix = "" if split == "train" else f"_{split}"` and
`return os.path.join(root, f"fineweb{suffix}_*.bin")` names the training split by its
argument, but the pattern it builds for "train", `fineweb_*.bin`, matches the validation
shards too. Labels follow the argument ("train": TRAIN); the string itself says both. For a
call whose arguments are constants (or unknown roots), the helper's returned expression is
evaluated with them and the pattern's splits are read from the text it makes.
"""

from __future__ import annotations

import ast
import posixpath

from auditors import labels as lb
from auditors.dispatch import default_value

_UNKNOWN = object()  # a value the evaluation does not know (a data root handed in): kept as text "<?>"


def pattern_splits(callee, call: ast.Call, caller=None) -> frozenset | None:
    """The splits the pattern a small helper returns for this call names (None: not a pattern
    helper, or the call's arguments are not constants). An argument that is a setting
    (`shard_pattern(args, args.polish_role)`) counts with its default, as the caller runs
    with nothing set in the environment."""
    ret = _returned(callee)
    if ret is None:
        return None
    params = callee.params[1:] if callee.is_method else callee.params
    env = {p: _const(a, caller) for p, a in zip(params, call.args)}
    env.update({k.arg: _const(k.value, caller) for k in call.keywords if k.arg})
    for p, d in lb.param_defaults(callee.node.args).items():
        env.setdefault(p, _const(d))
    if not any(isinstance(v, str) for v in env.values()):
        return None
    text = _value(ret, env, callee, 0)
    if not isinstance(text, str) or "*" not in text:
        return None
    return lb.split_labels(text.replace("<?>", "x"))


def _returned(f) -> ast.expr | None:
    """The expression a helper of at most four statements returns, or None."""
    body = f.node.body
    if len(body) > 4 or type(body[-1]) is not ast.Return or body[-1].value is None:
        return None
    if not all(type(st) in (ast.Assign, ast.Expr) for st in body[:-1]):
        return None
    return body[-1].value


def _const(e, caller=None):
    if type(e) is ast.Constant:
        return e.value if isinstance(e.value, str) else _UNKNOWN
    if caller is not None and type(e) is ast.Attribute:
        value = default_value(caller, e)
        return value if isinstance(value, str) else _UNKNOWN
    return _UNKNOWN


def _value(e, env: dict, f, depth: int):
    """The string an expression makes, `_UNKNOWN` when some part is not known."""
    if depth > 8:
        return _UNKNOWN
    if type(e) is ast.Constant:
        return e.value
    if type(e) is ast.Name:
        if e.id in env:
            return env[e.id]
        bound = f.defs.get(e.id)
        return _value(bound, env, f, depth + 1) if bound is not None else _UNKNOWN
    if type(e) is ast.JoinedStr:
        parts = [_value(v.value if type(v) is ast.FormattedValue else v, env, f, depth + 1) for v in e.values]
        return "".join(p if isinstance(p, str) else "<?>" for p in parts)
    if type(e) is ast.BinOp and type(e.op) is ast.Add:
        left, right = _value(e.left, env, f, depth + 1), _value(e.right, env, f, depth + 1)
        return (left if isinstance(left, str) else "<?>") + (right if isinstance(right, str) else "<?>")
    if type(e) is ast.IfExp:
        test = _test(e.test, env, f, depth)
        if test is None:
            return _UNKNOWN
        return _value(e.body if test else e.orelse, env, f, depth + 1)
    if type(e) is ast.Subscript and type(e.value) is ast.Name:  # `SPLITS[role]` of a dict literal, the key known
        table, key = f.binding(e.value.id), _value(e.slice, env, f, depth + 1)
        if type(table) is ast.Dict and isinstance(key, str):
            return next((_value(v, env, f, depth + 1) for k, v in zip(table.keys, table.values)
                         if type(k) is ast.Constant and k.value == key), _UNKNOWN)
        return _UNKNOWN
    if type(e) is ast.Call and lb.call_name(e.func) == "join" and lb.dotted(e.func) in ("os.path.join", "posixpath.join", "path.join"):
        parts = [_value(a, env, f, depth + 1) for a in e.args]
        return posixpath.join(*[p if isinstance(p, str) else "<?>" for p in parts]) if parts else _UNKNOWN
    return _UNKNOWN


def _test(e, env: dict, f, depth: int) -> bool | None:
    """`split == "train"`, `split in ("train", "all")` with a known split; else None."""
    if type(e) is not ast.Compare or len(e.ops) != 1:
        return None
    left = _value(e.left, env, f, depth + 1)
    right = e.comparators[0]
    if not isinstance(left, str):
        return None
    op = type(e.ops[0])
    if op in (ast.Eq, ast.NotEq):
        value = _value(right, env, f, depth + 1)
        return None if not isinstance(value, str) else (left == value) == (op is ast.Eq)
    if op in (ast.In, ast.NotIn) and type(right) in (ast.Tuple, ast.List, ast.Set):
        values = [_value(x, env, f, depth + 1) for x in right.elts]
        return None if not all(isinstance(v, str) for v in values) else (left in values) == (op is ast.In)
    return None
