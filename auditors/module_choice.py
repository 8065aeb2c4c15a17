"""Modules a submission loads by a name it computes: `importlib.import_module("calib." +
os.environ.get("CALIB_SOURCE", cfg["calibration"]))` loads one of the folder's modules
under `calib.`, the one the name spells. Every candidate counts as imported by the file
that loads it (it is run, and analysed with that file), but its code, and what it adds to
the code it was analysed with, runs only where the name is its own: a plugin the launch
does not pick is dormant, with the test that would pick it.
"""

from __future__ import annotations


def candidates(items: list[tuple[str, str]], all_facts: list[dict]) -> list[list[tuple[str, str, str]]]:
    """Per unit: (candidate file, its module name, the function that loads it, the test that
    picks it) for each computed load in the unit."""
    out = []
    for name, facts in zip((n for n, _ in items), all_facts):
        found = []
        for func, arg, prefix in facts.get("module_choices", ()):
            for other, _ in items:
                module = other[:-len(".py")].replace("/", ".") if other.endswith(".py") and "[unpacked" not in other else None
                if module and other != name and module.startswith(prefix) and not module.endswith("__init__"):
                    found.append((other, module, func, f"({arg}) == {module!r}"))
        out.append(found)
    return out


def unchosen_modules(items: list[tuple[str, str]], all_facts: list[dict], env: dict, settings_files: dict) -> dict[str, str]:
    """{file: condition} for the files every computed load of them skips under this launch."""
    from auditors.reach import Evaluator

    tests: dict[str, list[tuple[int, str, str]]] = {}
    for i, found in enumerate(candidates(items, all_facts)):
        for other, _module, func, test in found:
            tests.setdefault(other, []).append((i, func, test))
    out = {}
    for other, choices in tests.items():
        verdicts = [Evaluator({**all_facts[i], "shipped_data": settings_files}, env).guard(test, func)
                    for i, func, test in choices]
        if all(v is False for v in verdicts):
            out[other] = f"{choices[0][2]}  [the name that loads {other}]"
    return out
