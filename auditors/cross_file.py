"""Data handed across the files of one submission.

Each file is analysed on its own (and cached by its content). When one file calls a
function that another file of the submission defines (`from evaluate import ttt_eval`,
then `ttt_eval(model, val_tokens, cfg)`), the splits it hands over (the `outgoing` facts)
become the labels of that function's parameters, and the defining file is analysed again
with them, so a TTT loop or an n-gram cache kept in a helper module is judged on the
validation tokens it really receives. One step: what the helper passes on to a third
file is not followed further.

Objects cross files too: a class of a helper module built and run by the main file
(`ScoreFirstTTT(evaluator, cfg).run(model, val)`, whose methods call back into the main
file's evaluator). For each file that imports a sibling, the two are also analysed as
one module (the importer, then the sibling), so calls resolve across both (so is a file with
a packed payload it runs in its own globals and then calls into); what that
finds beyond each file's own findings is added to the file the line lies in, and an
error of the importer that depends on what it hands the sibling (read alone, a call of
another file's function returns every split it is given) stands only if the merged
module finds it too.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_LINE = re.compile(r"\bline (\d+)")


def with_cross_file_data(items: list[tuple[str, str]], facts: list[dict], use_cache: bool = True,
                         inlined: dict[int, str] | None = None) -> list[dict]:
    """The facts, with every file whose functions other files call with data re-analysed
    (a file whose settings files were inlined: its findings from that text, see
    `auditors.shipped_config`)."""
    from auditors.engine import analyze_seeded

    defined: dict[str, list[int]] = {}  # top-level function name -> the plain files defining it
    for i, (name, _) in enumerate(items):
        if "[unpacked" in name:
            continue
        for q in facts[i].get("functions", {}):
            if "." not in q and q != "<module>":
                defined.setdefault(q, []).append(i)
    seeds: dict[int, dict[str, dict[str, set]]] = {}
    imported = _imported_modules(items, facts)
    for a, fa in enumerate(facts):
        imports = imported[a]
        for called, handed in fa.get("outgoing", {}).items():
            for b in defined.get(called, []):
                stem = PurePosixPath(items[b][0]).stem
                if b == a or not any(m == stem or m.endswith("." + stem) for m in imports):
                    continue
                params = facts[b]["functions"][called]["params"]
                slot = seeds.setdefault(b, {}).setdefault(called, {})
                for p, labels in [*zip(params, handed["args"]), *handed["kws"].items()]:
                    if labels and p in params:
                        slot.setdefault(p, set()).update(labels)
    out = list(facts)
    for b, by_function in seeds.items():
        plain = {name: {p: sorted(v) for p, v in params.items() if v} for name, params in by_function.items()}
        plain = {name: params for name, params in plain.items() if params}
        if plain:
            out[b] = analyze_seeded(items[b][1], plain, use_cache)
            if b in (inlined or {}):
                out[b]["findings"] = analyze_seeded(inlined[b], plain, use_cache)["findings"]
    return out


def with_merged_imports(items: list[tuple[str, str]], facts: list[dict], use_cache: bool = True) -> list[dict]:
    """The facts, with the findings of each importer analysed together with the siblings it
    imports (all of them in one module where no two define a top-level name alike, so that a
    loop in the importer over one sibling's generator that calls another sibling's methods is
    read whole) added where they lie."""
    from auditors.engine import facts_for

    plain = [i for i, (name, _) in enumerate(items) if "[unpacked" not in name and name.endswith(".py")
             and not facts[i].get("parse_error")]
    # a sibling may ship its code packed: the unpacked text is what an import of it runs
    siblings = plain + [i for i, (name, _) in enumerate(items) if "[unpacked" in name and not facts[i].get("parse_error")]
    groups: list[tuple[int, list[int]]] = []  # (importer, the siblings merged after it, in order)
    imported = _imported_modules(items, facts)
    for a in plain:
        imports, mine = _imported_through(items, siblings, imported, a), []
        for b in siblings:
            stem = PurePosixPath(items[b][0]).stem
            own = items[b][0].startswith(items[a][0] + "[unpacked") and _calls_any(items[a][1], _top_level(facts[b]))
            if items[a][0].endswith("__init__.py") and not _calls_any(items[a][1], _top_level(facts[b])):
                continue  # a package's re-export (`from .core import *`): its importers run the module, it does not
            if b == a or not (own or any(m == stem or m.endswith("." + stem) for m in imports)) \
                    or _top_level(facts[a]) & _top_level(facts[b]):
                continue  # (`own`: a payload the file runs in its own globals and then calls into)
            home = next((g for g in mine if not any(_top_level(facts[c]) & _top_level(facts[b]) for c in g)), None)
            if home is None:
                mine.append([b])
            else:
                home.append(b)
        groups += [(a, g) for g in mine]
    if not groups:
        return facts
    joined = [_joined(items, a, group, facts) for a, group in groups]
    out = [dict(f) for f in facts]
    unseen: set[tuple] = set()  # (file, rule, line) of an importer's errors the merged module does not confirm
    for (a, group), merged in zip(groups, facts_for(joined, use_cache)):
        starts = _starts(items, a, group)  # the merged line before each file's first
        if set(facts[a].get("outgoing", {})) & set().union(*(_top_level(facts[b]) for b in group)):
            # the importer hands data to the siblings' functions, which it could only guess at alone
            # (`rows = calibration_rows(src, train_glob=..., val_glob=...)` as every split it is handed)
            confirmed = {(r["rule"], r["line"]) for r in merged.get("findings", []) if r["line"] <= starts[1][1]}
            unseen |= {(a, o["rule"], o["line"]) for o in facts[a].get("findings", [])
                       if o["severity"] == "error" and (o["rule"], o["line"]) not in confirmed}
        for r in merged.get("findings", []):
            if r["rule"] == "unparsable-code":
                continue
            home, offset = next((i, o) for i, o in reversed(starts) if r["line"] > o)
            line = r["line"] - offset
            same = [o for o in out[home]["findings"] if o["rule"] == r["rule"] and o["line"] == line]
            # its reach is judged in the merged module, where the importer's calls and settings reach it
            seen = {**r, "reached_in": (merged, r, items[a][0])}  # (and the importer: its role decides what calls it)
            merged_with = {"merged_with": [items[a][0], *(items[b][0] for b in group)]}  # (a finding the files make together)
            if not same or (r["severity"] == "error" and all(o["severity"] != "error" for o in same)):
                # (a warning of the file alone, `downloads in a module that scores nothing`, is an
                # error when the importer's evaluation reaches it)
                message = _relined(r["message"], starts, items, home)
                kept = [o for o in out[home]["findings"] if not any(o is s for s in same)]
                out[home]["findings"] = [*kept, {**seen, **merged_with, "line": line, "message": message}]
            else:  # (the importer's own finding too: what the siblings define may decide its guards)
                out[home]["findings"] = [{**o, "reached_in": (merged, r, items[a][0])} if any(o is s for s in same) else o
                                         for o in out[home]["findings"]]
    for a, rule, line in unseen:
        out[a]["findings"] = [o for o in out[a]["findings"] if (o["rule"], o["line"]) != (rule, line)]
    return out


def _imported_through(items, siblings: list[int], imported: list[set[str]], a: int) -> set[str]:
    """The modules a file imports, with those that the siblings it imports import in turn
    (train_gpt.py imports memory.py, which imports hashing.py: the three run as one)."""
    out, grown = set(imported[a]), True
    while grown:
        grown = False
        for b in siblings:
            stem = PurePosixPath(items[b][0]).stem
            if b != a and any(m == stem or m.endswith("." + stem) for m in out) and not imported[b] <= out:
                out |= imported[b]
                grown = True
    return out


def _joined(items, a: int, group: list[int], facts: list[dict] | None = None) -> str:
    """The importer's text, with what it reads off a merged sibling's module name read as the
    merged definition (`ttt_eval.ScoreFirstTTT(...)` as `ScoreFirstTTT(...)`), then each
    sibling's as the importer runs it."""
    importer = items[a][1]
    for b in group if facts is not None else ():
        importer = _unqualified(importer, PurePosixPath(items[b][0].split("[unpacked")[0]).stem, _top_level(facts[b]))
    parts = [importer, *(_as_imported(items[b][1], items[a][0]) for b in group)]
    return "".join(p + ("" if p.endswith("\n") else "\n") for p in parts[:-1]) + parts[-1]


def _unqualified(source: str, stem: str, names: set[str]) -> str:
    """`mod.Name` -> `Name` for the names the sibling `stem` defines, under each local name
    the importer gives that module (`import ttt_eval`, `import pkg.ttt_eval as te`,
    `from pkg import ttt_eval`); lines and the rest of the text stay as they were."""
    if not names or stem not in source:
        return source
    local = set()
    for m in re.finditer(rf"^\s*import\s+([\w.]*\b{re.escape(stem)})(?:\s+as\s+(\w+))?\s*$", source, re.M):
        local.add(m.group(2) or m.group(1))
    for m in re.finditer(rf"^\s*from\s+[\w.]+\s+import\s+{re.escape(stem)}(?:\s+as\s+(\w+))?\s*$", source, re.M):
        local.add(m.group(1) or stem)
    if not local:
        return source
    alternatives = "|".join(re.escape(n) for n in sorted(local, key=len, reverse=True))
    wanted = "|".join(re.escape(n) for n in sorted(names))
    return re.sub(rf"(?<![\w.])(?:{alternatives})\.({wanted})\b", r"\1", source)


def _starts(items, a: int, group: list[int]) -> list[tuple[int, int]]:
    """(file, the merged module's line just before the file's first) for the importer and
    each sibling after it."""
    out, offset = [], 0
    for i in [a, *group]:
        out.append((i, offset))
        offset += len(items[i][1].splitlines())
    return out


def _imported_modules(items: list[tuple[str, str]], facts: list[dict]) -> list[set[str]]:
    """Each file's imports as absolute module names, with the modules that a package it
    imports pulls in itself (`import evalkit`, whose __init__.py runs `from .core import *`)."""
    from auditors.engine import absolute_imports
    from auditors.module_choice import candidates

    own = [set(absolute_imports(name.split("[unpacked")[0], f.get("imports", []))) | {c[1] for c in loads}
           for (name, _), f, loads in zip(items, facts, candidates(items, facts))]
    inits = {name[:-len("/__init__.py")].replace("/", "."): i for i, (name, _) in enumerate(items)
             if name.endswith("/__init__.py")}
    return [mods.union(*[own[inits[m]] for m in mods if m in inits and inits[m] != i]) for i, mods in enumerate(own)]


IMPORTED = '"imported by '  # the test a merged sibling's main block is given (a finding under it names it)
_MAIN_GUARD = re.compile(r"""^(if\s+__name__\s*==\s*(['"])__main__\2)\s*:""", re.M)


def _as_imported(source: str, importer: str) -> str:
    """The sibling's text as the importer runs it: its `if __name__ == "__main__":` block (the
    sibling's own command line, a pre-fetch run by hand) does not run on import, so its test
    is made false, on the same line (`... and not "imported by train_gpt.py":`)."""
    label = importer.replace('"', "'")
    return _MAIN_GUARD.sub(lambda m: f'{m.group(1)} and not {IMPORTED}{label}":', source)


def _relined(message: str, starts: list[tuple[int, int]], items, home: int) -> str:
    """A message's `line N` of the merged module as a line of the file it lies in, named
    when that is not the file the finding is reported in."""
    def one(match) -> str:
        n = int(match.group(1))
        i, offset = next((i, o) for i, o in reversed(starts) if n > o)
        return f"line {n - offset}" + (f" of {items[i][0]}" if i != home else "")
    return _LINE.sub(one, message)


def _top_level(facts: dict) -> set[str]:
    """Names a file defines at its top level (functions and classes)."""
    return {q for q in facts.get("functions", {}) if "." not in q and q != "<module>"} | set(facts.get("classes", []))


def _calls_any(source: str, names: set[str]) -> bool:
    """The text calls one of these names (`hk = HT(sp, V)` of a class its packed payload defines)."""
    return any(re.search(rf"(?<![\w.]){re.escape(n)}\s*\(", source) for n in names)
