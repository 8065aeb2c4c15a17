"""Static audit of Parameter Golf submissions (DESIGN.md "Static audit", RULES.md).

    from auditors import audit_path
    report = audit_path("records/.../", profile="official", env={"NGRAM_CACHE": "1"})
    report.errors, report.warnings, report.findings, report.to_dict()
"""

from __future__ import annotations

from pathlib import Path

from auditors.model import AuditReport, Finding

__all__ = ["audit_path", "AuditReport", "Finding"]


def audit_path(path, profile: str = "official", env: dict | None = None, *, use_cache: bool = True,
               baseline_bpb: float | None = None, progress: bool = False) -> AuditReport:
    """Audit a file, a folder of code or a records-style submission folder."""
    from harness.errors import BadInput

    from auditors.cross_file import IMPORTED
    from auditors.engine import (analyze_units, collect_code, entry_files, launch_flags, reachable_files,
                                 shipped_packages, siblings_run_by, units)
    from auditors.reach import PROFILES
    from auditors.resolver import Resolver
    from auditors.rules import rule_info

    root = Path(path)
    if not root.exists():
        raise BadInput(f"audit path does not exist: {root}")
    if profile not in PROFILES:
        raise BadInput(f"unknown profile {profile!r} (official | single-gpu)")
    base_env = {**PROFILES[profile], **(env or {})}
    items = units(collect_code(root), root)
    ran = units(siblings_run_by(root), root) if root.is_file() else []  # what a file audited alone runs
    items += ran
    if root.is_dir() and not items and not _other_audited_files(root):
        raise BadInput(f"nothing to audit under {root}: no Python, C/CUDA, byte-table, log or record files")
    if root.is_dir():
        for name, folder in shipped_packages(root):
            items += [(f"{name}/{label}", text) for label, text in units(collect_code(folder), folder)]
    items, all_facts = analyze_units(items, use_cache=use_cache, progress=progress)
    from auditors.shipped_config import inlined_texts, remote_setting, shipped_data, with_inlined_findings
    settings_files = shipped_data(root) if root.is_dir() else shipped_data(root.parent, recursive=False)
    texts = inlined_texts(items, all_facts, settings_files)  # the splits the settings files' strings name
    all_facts = with_inlined_findings(all_facts, texts, use_cache)
    if len(items) > 1:
        from auditors.cross_file import with_cross_file_data, with_merged_imports
        all_facts = with_merged_imports(items, with_cross_file_data(items, all_facts, use_cache, texts), use_cache)
    rules = rule_info()
    report = AuditReport(str(root), profile)
    callers: dict[str, set[int]] = {}  # called name -> the units that call it
    for i, f in enumerate(all_facts):
        for name in f.get("called", ()):
            callers.setdefault(name, set()).add(i)
    entries = entry_files(root) if root.is_dir() else [root.name] if ran else None
    api_files = set(entries) if entries and (root / "submission.toml").is_file() else None
    runs, runner = None, {}
    plain_facts = {name: facts for (name, _), facts in zip(items, all_facts) if "[unpacked" not in name}
    if entries:
        from auditors.module_choice import candidates
        loads = {name: [c[1] for c in found] for (name, _), found in zip(items, candidates(items, all_facts))}
        plain = {name: facts.get("imports", []) + loads.get(name, []) for name, facts in plain_facts.items()}
        mentions = {name: facts.get("mentions", []) for name, facts in plain_facts.items()}
        shipped = [name for name in plain if "/" in name and name.split("/", 1)[0] in {p for p, _ in shipped_packages(root)}]
        runner = reachable_files(entries, plain, mentions)
        runs = set(runner) | set(shipped)
    from auditors.module_choice import unchosen_modules
    unchosen = unchosen_modules(items, all_facts, base_env, settings_files)  # plugins a computed name does not load
    wrapper_env: dict[str, dict] = {}
    for index, ((name, source), facts) in enumerate(zip(items, all_facts)):
        outside = runs is not None and name.split("[unpacked")[0] not in runs
        if facts.get("parse_error"):  # nothing to resolve: the file itself is the finding
            for r in facts["findings"]:
                info = rules[r["rule"]]
                cond = f"{name.split('[unpacked')[0]} is not run by {' / '.join(entries)} (not imported)" if outside else None
                report.findings.append(Finding(r["rule"], info.tag, r["severity"], r["confidence"],
                                               "dormant" if outside else "active", cond, name, r["line"], r["message"],
                                               info.reference, ""))
            continue
        env = dict(base_env)
        parent = name.rsplit("[unpacked", 1)[0] if "[unpacked" in name else None
        inherited = wrapper_env.get(parent, {}) if parent else _runner_env(name, runner, plain_facts)
        for k, v in inherited.items():
            env.setdefault(k, v)  # os.environ set by the wrapper, overridable by --env
        wrapper_env[name] = {**inherited, **facts.get("env_sets", {})}
        foreign = {n for n, units_calling in callers.items() if units_calling - {index}}
        api_entry = api_files is not None and name.split("[unpacked")[0] in api_files
        if facts.get("arg_defaults") and root.is_dir():  # the folder's run command sets these flags
            passed = launch_flags(root, Path(name.split("[unpacked")[0]).name)
            facts = {**facts, "arg_defaults": {k: passed.get(k, v) for k, v in facts["arg_defaults"].items()}}
        if parent and parent in plain_facts:  # packed code reads names its wrapper bound (`E = os.environ.get`)
            facts = {**facts, "outer_defs": plain_facts[parent].get("functions", {}).get("<module>", {}).get("defs", {})}
        facts = {**facts, "shipped_data": settings_files}  # settings files the guards may read
        resolver = Resolver(facts, env, foreign, api_entry)
        in_merged: dict[int, Resolver] = {}  # one per merged module (its memo serves all its findings)
        lines = source.splitlines()
        for r in facts["findings"]:
            if r.get("setting"):  # (a reader that fetches what a settings key holds: only a URL there matters)
                remote = remote_setting(settings_files, r["setting"])
                if remote is None:
                    continue
                r = {**r, "message": r["message"] + f" ({remote[0]} sets {r['setting']!r} to {remote[1]!r})"}
            if "reached_in" in r:  # a helper's finding that the importer reaches: its calls and settings decide
                merged, as_merged, importer = r["reached_in"]
                if id(merged) not in in_merged:  # (the harness calls the API functions of an importer that is the entry)
                    in_merged[id(merged)] = Resolver({**merged, "shipped_data": settings_files}, env, foreign,
                                                     api_entry or api_files is not None and importer in api_files)
                reach, cond = in_merged[id(merged)].finding(as_merged)
                if cond and IMPORTED in cond and (entries is None or name.split("[unpacked")[0] in entries):
                    reach, cond = resolver.finding(r)  # run as a script itself (an entry): its own main block runs
            else:
                reach, cond = resolver.finding(r)
            if outside and reach != "dormant":
                reach, cond = "dormant", f"{name.split('[unpacked')[0]} is not run by {' / '.join(entries)} (not imported)"
            skipped = next((unchosen[n] for n in (name.split("[unpacked")[0], *r.get("merged_with", ())) if n in unchosen), None)
            if skipped and reach != "dormant":  # (also what a skipped plugin adds to the module it was analysed with)
                reach, cond = "dormant", skipped
            info = rules[r["rule"]]
            line = lines[r["line"] - 1].strip() if 0 < r["line"] <= len(lines) else ""
            severity, message = r["severity"], r["message"]
            run_by = _download_run_by(r, index, items, all_facts, entries) if reach == "active" else None
            if run_by:  # a preparation helper the record's own script calls: the download runs in the record run
                severity = "error"
                message = message.split(" in a module")[0] + f" in a helper that {run_by} calls: the download runs in the record run"
            report.findings.append(Finding(r["rule"], info.tag, severity, r["confidence"], reach, cond,
                                           name, r["line"], message, info.reference, line))
    from auditors.c_kernels import check_c_kernels
    from auditors.val_split import check_val_split
    report.findings.extend(check_val_split(root, items, all_facts, entries))
    report.findings.extend(check_c_kernels(root))
    if root.is_dir():
        from auditors.records import check_records
        from auditors.shipped_byte_tables import check_shipped_tables
        report.findings.extend(check_records(root, baseline_bpb))
        report.findings.extend(check_shipped_tables(root))
    report.findings = _merged(report.findings)
    report.findings.sort(key=lambda f: (f.path, f.line, f.rule))
    return report


def _download_run_by(r: dict, index: int, items, all_facts, entries) -> str | None:
    """The run script that calls the function holding a download the file alone took for data
    preparation (`from prepare import fetch_shards`, then `fetch_shards(root, "val", ...)` in
    train_gpt.py's main), or None."""
    if r["rule"] != "network-at-eval" or r["severity"] != "warning" or "neither trains nor scores" not in r["message"]:
        return None
    func = r.get("function", "")
    for j, ((name, _), facts) in enumerate(zip(items, all_facts)):
        if j != index and entries and name in entries and func in facts.get("called", ()) \
                and func not in facts.get("functions", {}):
            return name
    return None


def _merged(findings: list[Finding]) -> list[Finding]:
    """One finding per rule, place and message: a line reached in several ways (two call
    sites, two loops) is reported once, as reached as its most reached way."""
    rank = {"dormant": 0, "unknown": 1, "active": 2}
    best: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.rule, f.path, f.line, f.severity, f.message)
        if key not in best or rank[f.reach] > rank[best[key].reach]:
            best[key] = f
    return list(best.values())


def _runner_env(name: str, runner: dict, plain_facts: dict) -> dict:
    """Environment variables set by the files that run `name` (exec, runpy, subprocess,
    import), the outermost first so that the nearer wrapper wins."""
    chain, p = [], runner.get(name)
    while p is not None and p not in chain:
        chain.append(p)
        p = runner.get(p)
    env: dict = {}
    for wrapper in reversed(chain):
        env.update(plain_facts.get(wrapper, {}).get("env_sets", {}))
    return env


def _other_audited_files(root: Path) -> bool:
    """Files the folder checks read besides Python: kernels, shipped tables, record files
    (a record folder holding only its logs is audited: its missing files are findings)."""
    from auditors.c_kernels import SUFFIXES

    if any((root / n).is_file() for n in ("README.md", "submission.json", "submission.toml")):
        return True
    return any(p.suffix in SUFFIXES or p.suffix in (".npz", ".log", ".json", ".md") for p in root.rglob("*") if p.is_file())
