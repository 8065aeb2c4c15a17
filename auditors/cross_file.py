"""Data handed across the files of one submission.

Each file is analysed on its own (and cached by its content). When one file calls a
function that another file of the submission defines (`from evaluate import ttt_eval`,
then `ttt_eval(model, val_tokens, cfg)`), the splits it hands over (the `outgoing` facts)
become the labels of that function's parameters, and the defining file is analysed again
with them, so a TTT loop or an n-gram cache kept in a helper module is judged on the
validation tokens it really receives. One step: what the helper passes on to a third
file is not followed further.
"""

from __future__ import annotations

from pathlib import PurePosixPath


def with_cross_file_data(items: list[tuple[str, str]], facts: list[dict], use_cache: bool = True) -> list[dict]:
    """The facts, with every file whose functions other files call with data re-analysed."""
    from auditors.engine import analyze_seeded

    defined: dict[str, list[int]] = {}  # top-level function name -> the plain files defining it
    for i, (name, _) in enumerate(items):
        if "[unpacked" in name:
            continue
        for q in facts[i].get("functions", {}):
            if "." not in q and q != "<module>":
                defined.setdefault(q, []).append(i)
    seeds: dict[int, dict[str, dict[str, set]]] = {}
    for a, fa in enumerate(facts):
        imports = set(fa.get("imports", []))
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
    return out
