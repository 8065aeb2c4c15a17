"""The pieces of the reachability interpreter that its parts share: how a guard's source
is parsed, the value that cannot be decided, and the scope names are looked up in."""

from __future__ import annotations

import ast


EACH = "__each_item__"  # a loop variable's binding, `__each_item__(items)`: one item at a time, not `items`


def parse_source(src: str) -> ast.expr:
    """An expression sliced from a file; parentheses keep a multi-line one valid."""
    return ast.parse(f"(\n{src}\n)", mode="eval").body


class Unknown(Exception):
    """The value cannot be decided statically."""


class Runtime(Unknown):
    """Decided by the launch settings read so far, except for a part that depends on
    values only the run has (`frac < 0.15` of elapsed time): either outcome can happen."""


class Scope:
    """Where names in a guard are looked up: a function's facts and its callers."""

    def __init__(self, facts: dict, func: str, env: dict, depth: int = 0, bound: dict | None = None):
        self.facts, self.func, self.env, self.depth = facts, func, env, depth
        self.bound = bound or {}  # parameters of an inlined helper call -> (argument, the caller's scope)

    def define(self, name: str) -> str | None:
        funcs = self.facts["functions"]
        f = funcs.get(self.func)
        q = self.func
        while f is not None:  # the function, then enclosing functions (closures)
            if name in f["defs"]:
                return f["defs"][name]
            q = q.rsplit(".", 1)[0] if "." in q else None
            f = funcs.get(q) if q else None
        return None


def call_sites(facts: dict, func: str) -> list[tuple[dict, dict[str, str]]]:
    """(site, parameter -> argument source) for each call of `func` in the file: sites are
    found by the function's name (a constructor's by its class's, without `self`)."""
    info = facts["functions"].get(func)
    if not info:
        return []
    init = func.endswith(".__init__") and info["is_method"]
    out = []
    for site in facts["calls"].get(func.rsplit(".", 2)[-2] if init else func.rsplit(".", 1)[-1], []):
        offset = 1 if info["is_method"] and (site["method"] or init) else 0
        passed = dict(zip(info["params"][offset:], site["args"]))
        passed.update({k: a for k, a in site["kwargs"].items() if k in info["params"]})
        out.append((site, passed))
    return out
