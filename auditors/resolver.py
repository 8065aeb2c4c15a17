"""Reachability of findings: a finding is `active`, `dormant` (with the condition that would
reach it) or `unknown`, from the guards around it and the call sites that reach its
function, each guard evaluated by `auditors.reach.Evaluator` under a launch profile."""

from __future__ import annotations

import re

from auditors.reach import Evaluator
from auditors.reach_scope import Scope, call_sites, parse_source


class Resolver:
    """Reachability of findings in one file's facts under one environment."""

    def __init__(self, facts: dict, env: dict, foreign_callers: set[str] = frozenset(), api_entry: bool = False):
        """api_entry: the file is a submission's entrypoint, whose functions the harness calls
        (load, and score/observe of what it returns), so an uncalled function is still reached."""
        self.facts, self.env, self.foreign, self.api_entry = facts, env, foreign_callers, api_entry
        self.memo: dict[str, tuple[str, str | None]] = {}

    def guards(self, guards, func: str) -> tuple[str, str | None]:
        status, cond = "active", None
        for src, polarity in guards:
            ev = Evaluator(self.facts, self.env)
            v = ev.guard(src, func)
            if v is None and (not ev.touched or ev.runtime or polarity in ("range", "soft")):
                continue  # data-dependent (`if seg_len <= 0: continue`, `flag and frac < 0.15`): the run decides
            if v is None:
                status, cond = ("unknown", cond or _describe(src, polarity, ev)) if status == "active" else (status, cond)
                continue
            if bool(v) != bool(polarity):
                return "dormant", _describe(src, polarity, ev)
        return status, cond

    def function(self, func: str, stack: tuple = ()) -> tuple[str, str | None]:
        if func == "<module>":
            return "active", None
        if func in self.memo:
            return self.memo[func]
        if func in stack or len(stack) > 12:
            return "unknown", "recursive call chain"
        name = func.rsplit(".", 1)[-1]
        # A call of the same name from inside the function itself (recursion, or a method
        # calling super().<name>) says nothing about who reaches it.
        sites = [s for s in self.facts["calls"].get(name, []) if s["caller"] != func]
        info = self.facts["functions"].get(func, {})
        cls, built = self._constructions(func)
        if cls and (name in ("forward", "__call__") or name.startswith("__")):
            # run by Python for an instance (`obj(x)`, `Cls(...)`), unseen: as reached as the
            # constructions of its class; else reached
            result = self.memo[func] = self._sites_reach(cls, built, stack + (func,)) if built else ("active", None)
            return result
        if not sites:
            outer = func.rsplit(".", 1)[0] if "." in func else None
            if name in self.foreign or self.api_entry:
                result = ("active", None)
            elif outer and outer in self.facts["functions"] and not info.get("is_method"):
                result = self.function(outer, stack + (func,))
            elif self.facts["entry"]:
                result = ("dormant", f"{name}() is never called")
            else:
                result = ("unknown", f"{name}() is not called in this file")
            self.memo[func] = result
            return result
        result = self._sites_reach(func, sites, stack)
        outer = func.rsplit(".", 1)[0] if "." in func else None
        if outer in self.facts["functions"] and not info.get("is_method"):
            # a nested function exists only once the function around it runs (a hook defined
            # inside a disabled n-gram evaluation and handed on is no more reached than it)
            result = _and(*result, *self.function(outer, stack + (func,)))
        if built and result[0] != "dormant":
            result = _and(*result, *self._sites_reach(cls, built, stack + (func,)))
        self.memo[func] = result
        return result

    def _constructions(self, func: str) -> tuple[str | None, list]:
        """(class, construction sites) of a method. A method runs only on an instance: where
        every mention of its class is a construction (no subclass, no factory table), it is
        no more reached than those constructions; else the sites are [] (not bounded)."""
        info = self.facts["functions"].get(func, {})
        cls = func.rsplit(".", 2)[-2] if info.get("is_method") and "." in func else None
        built = self.facts["calls"].get(cls, []) if cls else []
        return cls, built if built and len(built) == self.facts.get("class_refs", {}).get(cls) else []

    def _sites_reach(self, func: str, sites: list, stack: tuple) -> tuple[str, str | None]:
        """The most reached of some call sites: each under its guards and its caller's reach."""
        best = None
        for site in sites:
            if site["caller"] == func:
                continue
            st, cond = self.guards(site["guards"], site["caller"])
            if st != "dormant":
                up, upcond = self.function(site["caller"], stack + (func,))
                st, cond = _and(st, cond, up, upcond)
            best = _or(best, (st, cond))
            if best[0] == "active":
                break
        return best or ("unknown", "only recursive calls")

    def finding(self, raw: dict) -> tuple[str, str | None]:
        st, cond = self._own(raw)
        needed = None  # the most reached of the functions the finding also requires (none: no such requirement)
        for q in raw.get("requires") or ():
            needed = _or(needed, self.function(q) if q in self.facts["functions"] else ("unknown", None))
        return _and(st, cond, *needed) if needed is not None else (st, cond)

    def _own(self, raw: dict) -> tuple[str, str | None]:
        st, cond = self.guards(raw["guards"], raw["function"])
        if st == "dormant":
            return st, cond
        per_site = self._per_call_site(raw) if st == "active" else None
        if per_site is not None:
            return per_site
        up, upcond = self.function(raw["function"])
        return _and(st, cond, up, upcond)

    def _per_call_site(self, raw: dict) -> tuple[str, str | None] | None:
        """A guard on a parameter that callers pass differently (`score(..., use_offset=False)`,
        then `score(..., use_offset=True)` under a flag): judged at each call site with that
        site's arguments, the finding is as reached as the most reached site where it holds.
        None when no guard reads such a parameter."""
        func = raw["function"]
        info = self.facts["functions"].get(func, {})
        params = set(info.get("params", ()))
        if not params or not any(params & set(re.findall(r"\w+", src)) for src, _ in raw["guards"]):
            return None
        if not any(Evaluator(self.facts, self.env).guard(src, func) is None for src, _ in raw["guards"]):
            return None
        best, skipped = None, False
        for site, passed in call_sites(self.facts, func):
            if site["caller"] == func:
                continue
            scope = Scope(self.facts, site["caller"], self.env)
            bound = {p: (parse_source(a), scope) for p, a in passed.items()}
            if any(v is not None and bool(v) != bool(pol) for src, pol in raw["guards"] if pol in (True, False)
                   for v in [Evaluator(self.facts, self.env).guard(src, func, bound)]):
                skipped = True
                continue
            st, cond = self.guards(site["guards"], site["caller"])
            if st != "dormant":
                up, upcond = self.function(site["caller"])
                st, cond = _and(st, cond, up, upcond)
            best = _or(best, (st, cond))
        if best is None and skipped:  # (the sites where it holds say which condition would reach it)
            return "dormant", f"every call of {func.rsplit('.', 1)[-1]}() passes arguments that skip it"
        cls, built = self._constructions(func)
        if best is not None and built and best[0] != "dormant":  # (and only on an instance of its class)
            best = _and(*best, *self._sites_reach(cls, built, (func,)))
        return best


def _and(a, acond, b, bcond):
    order = {"dormant": 0, "unknown": 1, "active": 2}
    if order[a] <= order[b]:
        return a, acond if a != "active" else None
    return b, bcond


def _or(best, cand):
    order = {"dormant": 0, "unknown": 1, "active": 2}
    if best is None or order[cand[0]] > order[best[0]]:
        return cand
    return best


_REASONS = ("is never called", "is not called in this file", "recursive call chain", "only recursive calls",
            "(not imported)")


def is_reason(condition: str) -> bool:
    """The condition says why nothing reaches the finding (`f() is never called`), rather
    than which guard would have to hold for it to run."""
    return condition.endswith(_REASONS)


def _describe(src: str, polarity: bool, ev: Evaluator) -> str:
    need = src if polarity else f"not ({src})"
    if ev.touched:
        return f"{need}  [{'; '.join(ev.touched.values())}]"
    return need
