"""How the reachability interpreter reads settings kept in less plain places (a mixin of
`auditors.reach.Evaluator`): the entry a settings function returns, a key of a module-level
settings dict (also one a `CFG.update(...)` adds), a field a loop over a dataclass's fields
reads from the environment, a small function a factory returns, and a field set under a
condition."""

from __future__ import annotations

import ast
import urllib.parse

from auditors.reach_scope import Scope, Unknown, parse_source


class SettingsReads:
    """Mixed into `Evaluator`: uses its `value`, `source`, `facts`, `env` and `touched`."""

    def each_item(self, n: ast.Call, scope: Scope):
        """A loop variable, `__each_item__(items)`: known where the loop runs over exactly one item."""
        items = self.value(n.args[0], scope)
        if isinstance(items, (list, tuple, dict, set, range)) and len(items) == 1:
            return next(iter(items))
        raise Unknown

    def spec_field(self, attr: str, base, scope: Scope):
        """`cfg.ttt_lr` of a field set in a loop over a table of (variable, default, conversion)
        entries (see `settings_forms.spec_fields`), else Unknown."""
        spec = self.facts.get("spec_fields", {}).get(attr)
        if not spec or not isinstance(base, (ast.Name, ast.Attribute)):
            raise Unknown
        return self.source(spec, Scope(self.facts, "<module>", self.env, scope.depth + 1))

    def holds(self, guards: list, func: str, unknown: bool = False) -> bool:
        """Every guard (source, polarity) evaluates to its polarity in `func`; one that cannot be
        evaluated counts as `unknown` (no, by default)."""
        for src, polarity in guards:
            try:
                if bool(self.value(parse_source(src), Scope(self.facts, func, self.env))) != bool(polarity):
                    return False
            except Unknown:
                if not unknown:
                    return False
        return True

    def made_helper(self, made: ast.Call, n: ast.Call, scope: Scope):
        """A call of the small function a factory returns: its returned expression with its own
        parameters bound to this call's arguments and the factory's to the factory call's."""
        factory = self.facts["functions"][made.func.id]
        home = Scope(self.facts, "<module>", self.env, scope.depth + 1)
        outer = {p: (a, home) for p, a in zip(factory["params"], made.args)}
        outer.update({k.arg: (k.value, home) for k in made.keywords if k.arg})
        return self.inline(factory["returns"], self.facts["functions"][factory["returns"]], n, scope, outer)

    def read_field(self, attr: str, src: str, scope: Scope):
        """The value `src` gives a field, with the field itself read as its default there."""
        self.fields_read.add(attr)
        try:
            return self.source(src, scope)
        finally:
            self.fields_read.discard(attr)

    def field_override(self, field: str, default):
        """A class field's value when the file sets its fields from the environment in a loop
        (`for f in fields(cls): raw = env.get(f.name.upper())`): the variable named after the
        field when it is set (converted like the default), else the default."""
        for prefix, case in self.facts.get("field_env", ()):
            key = prefix + (field.upper() if case == "upper" else field.lower() if case == "lower" else field)
            if key not in self.env:
                self.touched.setdefault(key, f"{key} unset: the field keeps {default!r}")
                continue
            raw = self.env[key]
            self.touched.setdefault(key, f"{key}={raw}")
            if isinstance(default, bool):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            try:
                return type(default)(raw) if isinstance(default, (int, float)) else raw
            except ValueError:
                raise Unknown from None
        return default

    def keys_of(self, n, scope: Scope) -> tuple | None:
        """The constant keys of a dict literal bound once to the name (`if source not in providers:`
        for `providers = {"train": lambda: ..., "val": lambda: ...}`), else None."""
        src = scope.define(n.id) if isinstance(n, ast.Name) and n.id not in scope.bound else None
        if src is None and isinstance(n, ast.Name) and n.id not in scope.bound:  # (a module-level table)
            src = self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(n.id)
        bound = parse_source(src) if src else None
        if isinstance(bound, ast.Dict) and bound.keys and all(isinstance(k, ast.Constant) for k in bound.keys):
            return tuple(k.value for k in bound.keys)
        return None

    def returned_entry(self, held: str | None, key, scope: Scope):
        """(expression, scope) of the entry `key` of what a settings helper returns, for a name
        bound to its call (`h = settings(ws)`): a dict literal's value under that key, or a
        keyword of the `Namespace(...)`-style call it returns; else None."""
        made = parse_source(held) if held else None
        helper = self.facts["functions"].get(made.func.id) if isinstance(made, ast.Call) and isinstance(made.func, ast.Name) else None
        ret = parse_source(helper["ret"]) if helper is not None and "ret" in helper else None
        if isinstance(ret, ast.Dict):
            entry = next((v for k, v in zip(ret.keys, ret.values) if isinstance(k, ast.Constant) and k.value == key), None)
        elif isinstance(ret, ast.Call):
            entry = next((k.value for k in ret.keywords if k.arg == key), None)
        else:
            return None
        if entry is None:
            return None
        bound = {p: (a, scope) for p, a in zip(helper["params"], made.args)}
        return entry, Scope(self.facts, made.func.id, self.env, scope.depth + 1, bound)

    def picked_field(self, name: str, attr: str, scope: Scope):
        """(expression, scope) of field `attr` of the object a name is bound to when a setting
        picks it from built objects: `preset = resolve_preset(ws)` returning `PRESETS["record"]
        if ws >= 8 else PRESETS["compact"]`, then `preset.repair_steps`: the keyword of the
        construction picked, else the class's default. None when the name holds none of these."""
        held = scope.define(name) if name not in scope.bound else None
        made = parse_source(held) if held else None
        helper = self.facts["functions"].get(made.func.id) if isinstance(made, ast.Call) and isinstance(made.func, ast.Name) else None
        if helper is not None and "ret" in helper:  # (the helper's parameters bound to this call's arguments)
            bound = {p: (a, scope) for p, a in zip(helper["params"], made.args)}
            made, scope = parse_source(helper["ret"]), Scope(self.facts, made.func.id, self.env, scope.depth + 1, bound)
        picks = 0
        for picks in range(4):  # (`A if test else B`, `TABLE["key"]`, nested)
            if isinstance(made, ast.IfExp):
                made = made.body if self.value(made.test, scope) else made.orelse
            elif isinstance(made, ast.Subscript) and isinstance(made.value, ast.Name) and isinstance(made.slice, ast.Constant):
                made, scope = self.settings_entry(made.value.id, made.slice.value, scope), Scope(self.facts, "<module>", self.env, scope.depth + 1)
            else:
                break
        if not picks or not (isinstance(made, ast.Call) and isinstance(made.func, ast.Name) and made.func.id in self.facts["classes"]):
            return None  # (an object built where it is bound, `args = Hyperparameters()`, is read field by field elsewhere)
        given = next((k.value for k in made.keywords if k.arg == attr), None)
        if given is not None:
            return given, scope
        default = self.facts["class_defs"].get(attr)
        return (parse_source(default), Scope(self.facts, "<module>", self.env, scope.depth + 1)) if default else None

    def settings_entry(self, name: str, key, scope: Scope):
        """The expression stored under a constant key of a module-level dict literal bound
        once (`A = {"TTT_REFINE": os.environ.get("TTT_REFINE", "0") == "1", ...}`), or None."""
        src = scope.define(name) if scope.func != "<module>" else None
        if src is None:
            src = self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(name)
        if not src:
            return None
        later = self.facts.get("dict_updates", {}).get(name, {}).get(key)
        if later is not None:  # `CFG.update(steps=_e("STEPS", 60, int))` at module level
            return parse_source(later)
        bound = parse_source(src)
        if isinstance(bound, ast.Call) and isinstance(bound.func, ast.Name) and bound.func.id == "dict":
            return next((k.value for k in bound.keywords if k.arg == key), None)  # `CFG = dict(steps=...)`
        if not isinstance(bound, ast.Dict):
            return None
        return next((v for k, v in zip(bound.keys, bound.values) if isinstance(k, ast.Constant) and k.value == key), None)

    def parsed_url(self, dotted: str, arg, scope: Scope):
        """`urlparse(uri)` of a URI the launch decides (parsing a string runs nothing of the audited code)."""
        uri = self.value(arg, scope)
        if not isinstance(uri, str):
            raise Unknown
        return (urllib.parse.urlparse if dotted.endswith("urlparse") else urllib.parse.urlsplit)(uri)

    def url_part(self, n: ast.Attribute, scope: Scope):
        """`parsed.scheme` (`.netloc`, `.path`, `.hostname`) of a parsed URI, or None."""
        if n.attr not in _URL_PARTS or not isinstance(n.value, (ast.Call, ast.Name)):
            return None
        try:
            parsed = self.value(n.value, scope)
        except Unknown:
            return None
        return getattr(parsed, n.attr) if isinstance(parsed, (urllib.parse.ParseResult, urllib.parse.SplitResult)) else None


_URL_PARTS = {"scheme", "netloc", "path", "hostname"}
