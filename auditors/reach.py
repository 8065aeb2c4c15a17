"""Reachability: evaluate the guards around a finding under a launch profile.

Guards are kept as source text (cache-friendly) and evaluated here with a tiny
three-valued interpreter over `ast`: environment reads with their defaults
(`os.environ.get`, `os.getenv`, `os.environ[...]`, wrapped in int/float/bool/str),
names bound to such reads in the function, its callers (through parameters), the
module or a Hyperparameters-style class (`args.x`, `self.x`, `h.x`), and the world
size (`WORLD_SIZE`, `dist.get_world_size()`). Nothing from the audited code runs.
`auditors.resolver` combines the guards of a finding and of the call sites above it.
"""

from __future__ import annotations

import ast
import operator

from auditors.reach_scope import EACH, Runtime, Scope, Unknown, call_sites, parse_source
from auditors.reach_settings import SettingsReads
from auditors.shipped_config import LOADERS, ShippedReads

PROFILES = {"official": {"WORLD_SIZE": "8", "RANK": "0", "LOCAL_RANK": "0"},
            "single-gpu": {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}}


_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
        ast.Is: operator.is_, ast.IsNot: operator.is_not}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_ENV_GETTERS = ("os.environ.get", "os.getenv", "environ.get", "getenv")
_ENVIRON = ("os.environ", "dict(os.environ)", "os.environ.copy()")  # what a name bound to the environment holds
_CASTS = {"int": int, "float": float, "bool": bool, "str": str, "len": len, "abs": abs, "max": max, "min": min,
          "sorted": sorted, "list": list, "tuple": tuple}
_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "isdigit"}


_MADE = (ast.Call, ast.Subscript, ast.BinOp, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.DictComp,
         ast.SetComp, ast.Lambda, ast.JoinedStr)  # expressions that make an object (not None)


class _Instance:
    """An object built by a constructor call: truthy, not None, otherwise opaque."""


class Evaluator(SettingsReads, ShippedReads):
    def __init__(self, facts: dict, env: dict):
        self.facts, self.env = facts, env
        self.touched: dict[str, str] = {}  # env keys a guard depended on -> how
        self.fields_read: set[str] = set()  # settings fields being evaluated (their own `c.x` is the class default)

    def guard(self, src: str, func: str, bound: dict | None = None) -> bool | None:
        self.runtime = False
        try:
            return bool(self.value(parse_source(src), Scope(self.facts, func, self.env, bound=bound)))
        except Runtime:
            self.runtime = True
            return None
        except (Unknown, SyntaxError, TypeError, ValueError, ZeroDivisionError, AttributeError, RecursionError):
            return None

    def value(self, n, scope: Scope):  # noqa: C901 - one dispatch over expression kinds
        if scope.depth > 12:
            raise Unknown
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            return self.name(n.id, scope)
        if isinstance(n, ast.Attribute):
            base = n.value
            if isinstance(base, ast.Name) and base.id == "os" and n.attr == "environ":
                return self.env
            if isinstance(base, ast.Name) and base.id == "sys" and n.attr == "argv":
                # the launch (`torchrun ... train_gpt.py`) passes the script no positional arguments
                self.touched.setdefault("sys.argv", "sys.argv = [script] (launched without arguments)")
                return ("train_gpt.py",)
            part = self.url_part(n, scope)  # `urlparse(uri).scheme` of a URI the launch gives
            if part is not None:
                return part
            picked = self.picked_field(base.id, n.attr, scope) if isinstance(base, ast.Name) else None
            if picked is not None:  # `preset.repair_steps` of the preset a setting picks from a table of them
                return self.value(*picked)
            field = self.facts.get("namespace_fields", {}).get(n.attr)
            if field and len(field) > 2 and not self.holds(field[2], field[0], unknown=True):
                field = None  # `if override: settings = replace(settings, calibration=override)` with no override
            if isinstance(base, (ast.Name, ast.Attribute)) and field and n.attr in self.facts["class_defs"] \
                    and n.attr not in self.fields_read:
                # a dataclass field set where the object is made (`replace(c, beta=_E("BETA", c.beta))`): that value
                # (whose own `c.beta` is the class default)
                self.fields_read.add(n.attr)
                try:
                    return self.source(field[1], Scope(self.facts, field[0], self.env, scope.depth + 1))
                finally:
                    self.fields_read.discard(n.attr)
            if isinstance(base, (ast.Name, ast.Attribute)) and n.attr in self.facts["class_defs"]:  # cfg.x, self.cfg.x
                override = self.facts.get("field_overrides", {}).get(n.attr) if n.attr not in self.fields_read else None
                if override is not None and self.holds(override[2], override[0]):
                    # `if world_size == 1: args.temp_mix = False`, where that condition holds (its own
                    # value read there, `cal.get("enabled", out.calibrate)`, is the default)
                    return self.read_field(n.attr, override[1], Scope(self.facts, override[0], self.env, scope.depth + 1))
                shipped = self.table_field(n.attr)  # `cls(**tomllib.load(fh)["quant"])`: what the settings file sets
                default = shipped[0] if shipped else \
                    self.source(self.facts["class_defs"][n.attr], Scope(self.facts, "<module>", self.env, scope.depth + 1))
                return self.field_override(n.attr, default)
            props = [q for q, info in self.facts["functions"].items() if info.get("property") and q.endswith(f".{n.attr}")]
            if isinstance(base, (ast.Name, ast.Attribute)) and len(props) == 1:  # a property of a settings class
                return self.source(self.facts["functions"][props[0]]["ret"], Scope(self.facts, props[0], self.env, scope.depth + 1))
            returned = self.returned_entry(scope.define(base.id), n.attr, scope) if isinstance(base, ast.Name) else None
            if returned is not None:  # `k = knobs()`, then `k.steps`: the `steps=` of the Namespace(...) it returns
                return self.value(*returned)
            if isinstance(base, (ast.Name, ast.Attribute)) and field:  # `cfg.ngram.two_pass` of a SimpleNamespace(...)
                return self.source(field[1], Scope(self.facts, field[0], self.env, scope.depth + 1))
            if isinstance(base, ast.Name) and n.attr in self.facts.get("arg_defaults", {}):
                # a command-line flag: argparse's default, or what the folder's run command passes
                default = self.facts["arg_defaults"][n.attr]
                self.touched.setdefault(f"--{n.attr}", f"--{n.attr} = {default}")
                home = self.facts.get("arg_homes", {}).get(n.attr, "<module>")  # read where it is declared
                override = self.facts.get("field_overrides", {}).get(n.attr) if n.attr not in self.fields_read else None
                if override is not None:  # `if args.n is None: args.n = 1 if world > 1 else 0` (its test reads the flag)
                    self.fields_read.add(n.attr)
                    try:
                        if self.holds(override[2], override[0]):
                            return self.source(override[1], Scope(self.facts, override[0], self.env, scope.depth + 1))
                    finally:
                        self.fields_read.discard(n.attr)
                return self.source(default, Scope(self.facts, home, self.env, scope.depth + 1))
            if isinstance(base, ast.Name) and "." in scope.func:
                init = f"{scope.func.rsplit('.', 1)[0]}.__init__"  # `self.boost` in a method: what the constructor set
                info = self.facts["functions"].get(init, {})
                src = info.get("self_attrs", {}).get(n.attr) if info.get("params", [None])[0] == base.id else None
                if src:
                    return self.source(src, Scope(self.facts, init, self.env, scope.depth + 1))
            return self.spec_field(n.attr, base, scope)  # (or Unknown)
        if isinstance(n, ast.UnaryOp):
            v = self.value(n.operand, scope)
            return {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}[type(n.op)](v)
        if isinstance(n, ast.BoolOp):
            return self.boolop(n, scope)
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in (ast.Is, ast.IsNot) \
                and type(n.comparators[0]) is ast.Constant and n.comparators[0].value is None:
            return self.is_none(n.left, scope) == (type(n.ops[0]) is ast.Is)
        if isinstance(n, ast.Compare):
            left = self.value(n.left, scope)
            for op, c in zip(n.ops, n.comparators):
                right = self.keys_of(c, scope) if type(op) in (ast.In, ast.NotIn) else None
                right = self.value(c, scope) if right is None else right
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            return _BIN[type(n.op)](self.value(n.left, scope), self.value(n.right, scope))
        if isinstance(n, ast.IfExp):
            return self.value(n.body, scope) if self.value(n.test, scope) else self.value(n.orelse, scope)
        if isinstance(n, ast.Dict) and not n.keys:
            return {}  # (`cfg.get("cache", {})`)
        if isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            return tuple(self.value(e, scope) for e in n.elts)
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and isinstance(n.slice, ast.Constant):
            entry = self.settings_entry(n.value.id, n.slice.value, scope)  # `A["TTT_REFINE"]` of a settings dict literal
            if entry is not None:
                return self.value(entry, Scope(self.facts, "<module>", self.env, scope.depth + 1))
            held = scope.define(n.value.id)
            if (held or self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(n.value.id)) in _ENVIRON:
                return self.value(ast.Subscript(parse_source("os.environ"), n.slice, ast.Load()), scope)  # `e["K"]`, e = os.environ
            returned = self.returned_entry(held, n.slice.value, scope)
            if returned is not None:  # `ev = eval_settings(world_size)`, then `ev["mix"]`: that entry of its dict
                return self.value(*returned)
            if n.value.id not in scope.bound and held is None:
                for caller, arg_src in self.param_sources(scope.func, n.value.id):
                    arg = parse_source(arg_src)  # `h["two_pass"]` of a parameter: the caller's `H["two_pass"]`
                    if isinstance(arg, ast.Name):
                        return self.value(ast.Subscript(arg, n.slice, ast.Load()),
                                          Scope(self.facts, caller, self.env, scope.depth + 1))
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Attribute) and n.value.attr == "argv":
            argv = self.value(n.value, scope)  # `sys.argv[1:] == ["download"]`, `sys.argv[1]`
            if isinstance(n.slice, ast.Slice):
                lo, hi = (self.value(b, scope) if b is not None else None for b in (n.slice.lower, n.slice.upper))
                return argv[lo:hi]
            index = self.value(n.slice, scope)
            if isinstance(index, int) and -len(argv) <= index < len(argv):
                return argv[index]
            raise Unknown
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Attribute) and n.value.attr == "environ":
            key = self.value(n.slice, scope)
            if key in self.env:
                self.touched.setdefault(key, f"{key}={self.env[key]}")
                return self.env[key]
            return self.set_default(key, scope)
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
            return self.entry(self.value(n.value, scope), n.slice.value)  # `cfg["recall"]` of a shipped settings file
        if isinstance(n, ast.Call):
            return self.call(n, scope)
        if type(n) in (ast.ListComp, ast.GeneratorExp) and self._empty(n, scope):
            return []
        raise Unknown

    def _empty(self, n, scope) -> bool:
        """A comprehension over known items that its filters all drop (`[g for g in "".split(",") if g]`):
        known to be empty; any other is decided by the run."""
        g = n.generators[0]
        items = self.value(g.iter, scope)
        if type(g.target) is not ast.Name or not isinstance(items, (list, tuple, str)):
            raise Unknown
        for item in items:
            inner = Scope(self.facts, scope.func, self.env, scope.depth + 1, {**scope.bound, g.target.id: (ast.Constant(item), scope)})
            if all(self.value(test, inner) for test in g.ifs):
                raise Runtime  # (something passes: what it makes, files found say, the run decides)
        return True

    def boolop(self, n: ast.BoolOp, scope):
        unknown = runtime = False
        for v in n.values:
            before = len(self.touched)
            try:
                r = self.value(v, scope)
            except Runtime:
                runtime = True
                continue
            except Unknown:
                if len(self.touched) == before:
                    runtime = True  # no launch setting in it: a value of the run (`frac < 0.15`)
                else:
                    unknown = True
                continue
            if (isinstance(n.op, ast.And) and not r) or (isinstance(n.op, ast.Or) and r):
                if (unknown or runtime) and type(r) is not bool:
                    break  # `urlparse(url).scheme or "file"`: an operand before decides the value, not only its truth
                return r
        if unknown:
            raise Unknown
        if runtime:
            raise Runtime
        return isinstance(n.op, ast.And)

    def call(self, n: ast.Call, scope):
        f = n.func
        dotted = ast.unparse(f)
        if dotted == EACH:  # a loop variable
            return self.each_item(n, scope)
        if isinstance(f, ast.Name) and f.id not in self.facts["functions"]:
            bound = scope.define(f.id) or self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(f.id) \
                or self.facts.get("outer_defs", {}).get(f.id)
            made = parse_source(bound) if bound and bound not in _ENV_GETTERS else None
            if isinstance(made, ast.Call) and isinstance(made.func, ast.Name) \
                    and "ret" in self.facts["functions"].get(self.facts["functions"].get(made.func.id, {}).get("returns", ""), {}):
                return self.made_helper(made, n, scope)  # `G = make_getter("PG_")`, then `G("UNIGRAM_PRIOR", 0, int)`
            if bound in _ENV_GETTERS:
                dotted = bound  # `E = os.environ.get`, then `E("NGRAM_ORDER", 0)`
            elif bound and bound.startswith("lambda") and not n.keywords:
                lam = parse_source(bound)  # `_b = lambda k, d: os.environ.get(k, str(int(d))) != "0"`, then `_b("SLOT", 0)`
                if isinstance(lam, ast.Lambda) and not lam.args.vararg and len(n.args) <= len(lam.args.args):
                    params = [a.arg for a in lam.args.args]
                    given = {p: (a, scope) for p, a in zip(params, n.args)}
                    home = scope.func if scope.define(f.id) else "<module>"
                    for p, d in zip(params[len(params) - len(lam.args.defaults):], lam.args.defaults):
                        given.setdefault(p, (d, Scope(self.facts, home, self.env, scope.depth + 1)))
                    if len(given) == len(params):
                        return self.value(lam.body, Scope(self.facts, home, self.env, scope.depth + 1, given))
        if isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Name):
            held = scope.define(f.value.id) or self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(f.value.id)
            if held in _ENVIRON:
                dotted = "os.environ.get"  # `e = os.environ` (or a copy of it), then `e.get("TTT_MODE", "auto")`
        if dotted in _ENV_GETTERS:
            key = self.value(n.args[0], scope)
            if key in self.env:
                self.touched.setdefault(key, f"{key}={self.env[key]}")
                return self.env[key]
            default_src = ast.unparse(n.args[1]) if len(n.args) > 1 else "unset"
            if len(n.args) > 1 and isinstance(n.args[1], ast.Name) and n.args[1].id in scope.bound:
                default_src = ast.unparse(scope.bound[n.args[1].id][0])  # the argument handed to the helper
            if len(n.args) > 1 and isinstance(n.args[1], ast.Name) and scope.define(n.args[1].id):
                default_src += f" = {scope.define(n.args[1].id)}"
            self.touched.setdefault(key, f"{key} default {default_src}" if default_src != "unset" else f"{key} unset")
            if len(n.args) > 1:
                v = self.value(n.args[1], scope)
                if not isinstance(n.args[1], ast.Constant) and " = " not in default_src and default_src not in (repr(v), str(v)) \
                        and self.touched[key] == f"{key} default {default_src}":
                    self.touched[key] += f" = {v!r}"  # (`str(int(d))` of a helper says little; its value does)
                return v
            default = next((k.value for k in n.keywords if k.arg == "default"), None)
            if default is None and key in self.facts.get("env_defaults", {}):
                return self.set_default(key, scope)
            return self.value(default, scope) if default is not None else None
        if dotted.rsplit(".", 1)[-1] in ("urlparse", "urlsplit") and len(n.args) == 1:
            return self.parsed_url(dotted, n.args[0], scope)
        if dotted in LOADERS:
            return self.loaded(n, scope)  # `json.load(open("eval_config.json"))`: the file the folder ships
        if dotted.rsplit(".", 1)[-1] in ("is_file", "exists", "isfile") and (n.args or isinstance(f, ast.Attribute)):
            return self.ships(n.args[0] if n.args else f.value, scope)  # `if not path.is_file(): return {}`
        if dotted.endswith("get_world_size") or dotted.endswith("device_count"):
            self.touched.setdefault("WORLD_SIZE", f"world_size={self.env.get('WORLD_SIZE', '1')} (profile)")
            return int(self.env.get("WORLD_SIZE", "1"))
        if dotted.endswith("is_initialized") or dotted.endswith("is_available"):
            return int(self.env.get("WORLD_SIZE", "1")) > 1 if dotted.endswith("is_initialized") else True
        if dotted.endswith("get_rank"):
            return int(self.env.get("RANK", "0"))
        if isinstance(f, ast.Name) and f.id == "getattr" and len(n.args) >= 2 and isinstance(n.args[1], ast.Constant):
            attr = n.args[1].value
            if attr in self.facts["class_defs"]:
                return self.source(self.facts["class_defs"][attr], Scope(self.facts, "<module>", self.env, scope.depth + 1))
            if len(n.args) == 3:
                return self.value(n.args[2], scope)
            raise Unknown
        if type(f) is ast.BoolOp and type(f.op) is ast.Or:  # `(cast or type(default))(raw)`: the first callable given
            chosen = next((v for v in f.values[:-1] if self.value(v, scope)), f.values[-1])
            return self.call(ast.Call(chosen, n.args, n.keywords), scope)
        if isinstance(f, ast.Name) and f.id in scope.bound and type(scope.bound[f.id][0]) in (ast.Name, ast.Call):
            f = scope.bound[f.id][0]  # `cast(raw)` in a helper handed `int` (or falling back to `type(default)`)
            n = ast.Call(f, n.args, n.keywords)
        if isinstance(f, ast.Name) and f.id == "field" or dotted == "dataclasses.field":
            # a dataclass field: `field(default=E)`, `field(default_factory=lambda: E)`
            kw = {k.arg: k.value for k in n.keywords}
            if "default" in kw:
                return self.value(kw["default"], scope)
            if type(kw.get("default_factory")) is ast.Lambda:
                return self.value(kw["default_factory"].body, scope)
            raise Unknown
        qual = self.visible(f.id, scope.func) if isinstance(f, ast.Name) else None
        helper = self.facts["functions"].get(qual) if qual else None
        if helper is not None and "ret" in helper and not n.keywords or (helper and "ret" in helper and all(
                k.arg in helper["params"] for k in n.keywords)):
            return self.inline(qual, helper, n, scope)
        if isinstance(f, ast.Name) and (f.id in self.facts.get("classes", ()) or f.id in self.facts.get("factories", ())
                                        or _class_name(f.id)):
            return _Instance()  # a new object of the file's classes (or one named as a class: `_Mixer(order)` of an
            # imported module), a function a factory builds: never None
        if isinstance(f, ast.Name) and f.id == "isinstance" and len(n.args) == 2:
            v, t = self.value(n.args[0], scope), self.value(n.args[1], scope)  # `isinstance(default, bool)` in a settings helper
            if isinstance(t, type) or (isinstance(t, tuple) and t and all(isinstance(x, type) for x in t)):
                return isinstance(v, t)
            raise Unknown
        if isinstance(f, ast.Call) and isinstance(f.func, ast.Name) and f.func.id == "type" and len(f.args) == 1:
            cast = type(self.value(f.args[0], scope))  # `type(default)(raw)`: the default's type applied to the text
            if cast in (int, float, str, bool) and len(n.args) == 1:
                return cast(self.value(n.args[0], scope))
            raise Unknown
        if isinstance(f, ast.Name) and f.id == "dict" and len(n.args) == 1 and not n.keywords:
            table = self.value(n.args[0], scope)  # `dict(raw.get("ttt", {}))`: a copy of a settings table
            if isinstance(table, dict):
                return dict(table)
            raise Unknown
        if isinstance(f, ast.Name) and f.id == "min" and n.args and not n.keywords:
            return self._min(n.args, scope)
        if isinstance(f, ast.Name) and f.id in _CASTS:
            return _CASTS[f.id](*[self.value(a, scope) for a in n.args])
        if isinstance(f, ast.Attribute) and f.attr in _STR_METHODS:
            base = self.value(f.value, scope)
            if isinstance(base, str):
                return getattr(base, f.attr)(*[self.value(a, scope) for a in n.args])
        if isinstance(f, ast.Attribute) and f.attr == "get" and 1 <= len(n.args) <= 2 and not n.keywords:
            base = self.value(f.value, scope)  # `cfg.get("enabled", False)` of a shipped settings file
            if isinstance(base, dict):
                key = self.value(n.args[0], scope)
                return base[key] if key in base else self.value(n.args[1], scope) if len(n.args) == 2 else None
        raise Unknown

    def inline(self, name: str, helper: dict, n: ast.Call, scope: Scope, outer: dict | None = None):
        """The value of a call of a small helper: its returned expression, its parameters
        bound to this call's arguments (or their defaults), other names to `outer` (a factory's
        parameters, for the function it returns)."""
        bound = {**(outer or {}), **{p: (a, scope) for p, a in zip(helper["params"], n.args)}}
        bound.update({k.arg: (k.value, scope) for k in n.keywords if k.arg})
        home = Scope(self.facts, "<module>", self.env, scope.depth + 1)
        for p, src in helper.get("param_defaults", {}).items():
            bound.setdefault(p, (parse_source(src), home))
        inner = Scope(self.facts, name, self.env, scope.depth + 1, bound)
        for p in [p for p in helper["params"] if helper["defs"].get(p) and p in bound]:
            fallback = parse_source(helper["defs"][p])  # `cast = cast or type(default)`
            if type(fallback) is ast.BoolOp and type(fallback.op) is ast.Or and len(fallback.values) == 2 \
                    and type(fallback.values[0]) is ast.Name and fallback.values[0].id == p:
                try:
                    given = self.value(*bound[p])
                except Unknown:
                    continue
                if not given:
                    bound[p] = (fallback.values[1], inner)
        return self.value(parse_source(helper["ret"]), inner)

    def visible(self, name: str, func: str) -> str:
        """The qualified name a call of `name` reaches from inside `func`: a function nested in
        it or in a function around it (`def main(): def env(...)`, then `env("K", 0)`), else
        the module's."""
        prefix = func
        while prefix and prefix != "<module>":
            if f"{prefix}.{name}" in self.facts["functions"]:
                return f"{prefix}.{name}"
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
        return name

    def _min(self, args, scope):
        """`min(passes, len(chunks))`: decided by the known arguments when one of them is at
        most 0 and the others are lengths or counts the run computes (never negative), else
        only when all are known."""
        known, lengths, failed = [], 0, None
        for a in args:
            if type(a) is ast.Call and type(a.func) is ast.Name and a.func.id == "len":
                lengths += 1
                continue
            try:
                known.append(self.value(a, scope))
            except (Unknown, Runtime) as e:  # (`min(args.cold, n_chunks)`: a count the run computes)
                failed = e
        if known and (lengths or failed) and all(isinstance(k, (int, float)) for k in known) and min(known) <= 0:
            return min(known)  # (at most 0 whatever the counts are: nothing runs)
        if failed is not None:
            raise failed
        if lengths:
            raise Runtime  # the length of something the run builds decides
        return min(known)

    def set_default(self, key: str, scope: Scope):
        """An unset variable that the file gives a default with `os.environ.setdefault(key, expr)`:
        that expression, evaluated where the call stands; else the read cannot be decided."""
        found = self.facts.get("env_defaults", {}).get(key)
        if found is None:
            self.touched.setdefault(key, f"{key} (required)")
            raise Unknown
        func, src = found
        self.touched.setdefault(key, f"{key} set by default to {src}")
        return self.source(src, Scope(self.facts, func, self.env, scope.depth + 1))

    def source(self, src: str, scope: Scope):
        return self.value(parse_source(src), scope)

    def is_none(self, e: ast.expr, scope: Scope) -> bool:
        """Whether the value is None. A name set to something under a test and to None
        otherwise (`cache = None`, then `if args.ngram: cache = Cache(...)`) is decided by
        the test, even where the something cannot be evaluated: a call, a slice or a
        container made there is an object."""
        try:
            return self.value(e, scope) is None
        except Unknown:
            src = scope.define(e.id) if type(e) is ast.Name else None
            if src is None and type(e) is ast.Name and e.id not in scope.bound and scope.depth < 12:
                sites = self.param_sources(scope.func, e.id, every=True)  # a parameter: what its callers pass
                verdicts = {self.is_none(parse_source(a), Scope(self.facts, c, self.env, scope.depth + 1)) for c, a in sites}
                if len(verdicts) == 1:
                    return verdicts.pop()
            if not src:
                raise
            bound = parse_source(src)
            if type(bound) is not ast.IfExp:
                raise
            inner = Scope(self.facts, scope.func, self.env, scope.depth + 1, scope.bound)
            chosen = bound.body if self.value(bound.test, inner) else bound.orelse
            if type(chosen) is ast.Constant:
                return chosen.value is None
            if type(chosen) in _MADE:
                return False
            raise

    def name(self, name: str, scope: Scope):
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        if name == "__name__":
            return "__main__"
        if name in scope.bound:
            arg, at = scope.bound[name]
            return self.value(arg, at)
        src = scope.define(name)
        if src == "":
            raise Unknown  # assigned more than once in that function
        if src is not None:
            bound = parse_source(src)
            if isinstance(bound, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
                raise Unknown  # a container filled while the program runs (`hidden = []`, then `.append`)
            return self.value(bound, Scope(self.facts, scope.func, self.env, scope.depth + 1, scope.bound))
        sites = self.param_sources(scope.func, name, every=True)
        if sites:  # a parameter: what its callers pass; callers that pass different values leave it to the run
            values = [self.source(arg_src, Scope(self.facts, caller_func, self.env, scope.depth + 1)) for caller_func, arg_src in sites]
            if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
                raise Runtime
            return values[0]
        module = self.facts["functions"].get("<module>", {"defs": {}})
        if name in module["defs"] and scope.func != "<module>":
            return self.source(module["defs"][name], Scope(self.facts, "<module>", self.env, scope.depth + 1))
        class_src = self.facts.get("class_defs", {}).get(name)
        if class_src is not None:  # a class-body name read by a later line of that body (`_default = ...`)
            return self.source(class_src, Scope(self.facts, "<module>", self.env, scope.depth + 1))
        if name.lower() == "world_size" or name.lower() == "ws":
            self.touched.setdefault("WORLD_SIZE", f"world_size={self.env.get('WORLD_SIZE', '1')} (profile)")
            return int(self.env.get("WORLD_SIZE", "1"))
        if name in ("bool", "int", "float", "str"):
            return _CASTS[name]  # a type handed to a settings helper (`_env("FLAG", False, bool)`, `if cast is bool:`)
        raise Unknown

    def param_sources(self, func: str, name: str, every: bool = False):
        """(caller, argument source) for the parameter `name` of `func`: the first call site
        that passes it, or with `every`, each one that does (sites are found by the function's
        name, so a same-named method of another class that takes no such argument is left out)."""
        if name not in self.facts["functions"].get(func, {}).get("params", ()):
            return []
        out = [(site["caller"], passed[name]) for site, passed in call_sites(self.facts, func) if name in passed]
        return out if every else out[:1]


def _class_name(name: str) -> bool:
    """A name written as a class's (`BackoffMixer`, `_Mixer`): a call of it builds an object."""
    bare = name.lstrip("_")
    return len(bare) > 1 and bare[0].isupper() and any(c.islower() for c in bare)
