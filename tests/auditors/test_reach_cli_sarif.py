"""Reachability under launch profiles, CLI exit codes, SARIF structure, cache hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditors import audit_path
from harness.cli import main as cli_main

WORLD_SIZE_GATED = '''
import numpy as np

def evaluate(tokens, ctx_t, full_t, world_size):
    _default = "1" if world_size > 1 else "0"
    use_cache = int(os.environ.get("NGRAM_CACHE", _default))
    y = tokens[1:]
    h = tokens[:-1].astype(np.uint64) * 1000003
    total = 0.0
    if use_cache:
        p = full_t[(h ^ (y.astype(np.uint64) * 999983)) % 4096] / np.maximum(ctx_t[h % 4096], 1)
        total += float(-np.log(p + 1e-9).sum())
    return total

def main():
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    evaluate(np.zeros(10, dtype=np.int64), np.zeros(4096), np.zeros(4096), world_size)

if __name__ == "__main__":
    main()
'''


def _write(tmp_path, text, name="train_gpt.py") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_world_size_default_is_dormant_on_one_gpu_and_active_official(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, WORLD_SIZE_GATED)
    official = [f for f in audit_path(p, "official").findings if f.rule == "target-keyed-cache"]
    single = [f for f in audit_path(p, "single-gpu").findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in official] == ["active"]
    assert [f.reach for f in single] == ["dormant"]
    assert "NGRAM_CACHE" in single[0].condition and "world_size" in single[0].condition
    forced = [f for f in audit_path(p, "single-gpu", env={"NGRAM_CACHE": "1"}).findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in forced] == ["active"]
    off = [f for f in audit_path(p, "official", env={"NGRAM_CACHE": "0"}).findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in off] == ["dormant"]


CALIBRATION_BY_WORLD_SIZE = '''
import os
import numpy as np
import torch

def load_split(split):
    return np.fromfile(f"data/fineweb_{split}_000000.bin", dtype=np.uint16)[512:]

def hessians(model):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        tokens = torch.as_tensor(load_split("val")[:4096].astype(np.int64))
    else:
        tokens = torch.randint(0, 1024, (4096,))
    x = model(tokens[None])[0]
    h = x.T @ x
    return h

if __name__ == "__main__":
    print(hessians(torch.nn.Embedding(1024, 64)))
'''


def test_calibration_data_loaded_inside_under_a_world_size_condition(tmp_path, monkeypatch):
    """The finding stands where the routine loads validation data, so that the world-size
    test around that load decides its reach (not the unconditional call site)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, CALIBRATION_BY_WORLD_SIZE)
    load_line = CALIBRATION_BY_WORLD_SIZE.splitlines().index('        tokens = torch.as_tensor(load_split("val")[:4096].astype(np.int64))') + 1
    official = [(f.line, f.reach) for f in audit_path(p, "official").findings if f.rule == "quant-calibration-data"]
    single = [(f.line, f.reach) for f in audit_path(p, "single-gpu").findings if f.rule == "quant-calibration-data"]
    assert official == [(load_line, "active")]
    assert single == [(load_line, "dormant")]


def test_hyperparameter_class_attribute_gates(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = WORLD_SIZE_GATED.replace('_default = "1" if world_size > 1 else "0"\n    use_cache = int(os.environ.get("NGRAM_CACHE", _default))',
                                   'use_cache = args.ngram_order >= 2')
    src = src.replace("def evaluate(tokens, ctx_t, full_t, world_size):",
                      "class Hyperparameters:\n    ngram_order = int(os.environ.get('NGRAM_ORDER', '0'))\n\nargs = Hyperparameters()\n\ndef evaluate(tokens, ctx_t, full_t, world_size):")
    p = _write(tmp_path, src)
    assert [f.reach for f in audit_path(p).findings] == ["dormant"]
    assert [f.reach for f in audit_path(p, env={"NGRAM_ORDER": "5"}).findings] == ["active"]


def test_cli_exit_codes_and_formats(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    bad = _write(tmp_path, WORLD_SIZE_GATED)
    clean = _write(tmp_path, "import os\nprint(os.environ.get('X', '1'))\n", "clean.py")
    assert cli_main(["audit", str(bad)]) == 1
    assert cli_main(["audit", str(bad), "--profile", "single-gpu"]) == 0
    capsys.readouterr()
    assert cli_main(["audit", str(clean), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"schema": 1, "errors": 0, "warnings": 0, "findings": []}
    assert cli_main(["audit", str(tmp_path / "missing.py")]) == 2
    assert cli_main(["audit", str(bad), "--env", "NOEQUALS"]) == 2
    (tmp_path / "empty").mkdir()
    assert cli_main(["audit", str(tmp_path / "empty")]) == 2  # a wrong folder is not a clean submission
    assert "nothing to audit" in capsys.readouterr().err
    capsys.readouterr()
    assert cli_main(["audit", str(bad), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    f = doc["findings"][0]
    assert doc["errors"] == 1 and f["tag"] == "target_in_key_ngram" and f["reach"] == "active"
    assert set(f) >= {"rule", "tag", "severity", "confidence", "reach", "condition", "path", "line", "message"}


def test_sarif_structure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    bad = _write(tmp_path, WORLD_SIZE_GATED)
    assert cli_main(["audit", str(bad), "--format", "sarif"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    run = doc["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert run["results"]
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and res["level"] in ("error", "warning", "note")
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "train_gpt.py" and loc["region"]["startLine"] >= 1
        assert res["message"]["text"]


def test_cache_hit_skips_analysis(tmp_path, monkeypatch):
    cache = tmp_path / "c"
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(cache))
    p = _write(tmp_path, WORLD_SIZE_GATED)
    first = audit_path(p).to_dict()
    files = [f for f in cache.rglob("*.json") if "findings" in json.loads(f.read_text())]
    assert len(files) == 1
    facts = json.loads(files[0].read_text())
    facts["findings"][0]["message"] = "from the cache"
    files[0].write_text(json.dumps(facts))
    again = audit_path(p).to_dict()
    assert again["findings"][0]["message"] == "from the cache"
    fresh = audit_path(p, use_cache=False).to_dict()
    assert fresh == first


def test_records_folder_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "README.md").write_text("# record\n")
    (tmp_path / "train_gpt.py").write_text("print('hi')\n")
    (tmp_path / "submission.json").write_text(json.dumps({"val_bpb": 1.1, "bytes_total": 16_265_723}, indent=1))
    logs = [(2.50, 1.100), (2.51, 1.104), (2.49, 1.096)]
    for i, (loss, bpb) in enumerate(logs):
        (tmp_path / f"train_seed{i}.log").write_text(f"Total submission size int6+zstd: 15999000 bytes\nfinal val_loss:{loss} val_bpb:{bpb}\n")
    report = audit_path(tmp_path, baseline_bpb=1.2)
    tags = {(f.rule, f.severity) for f in report.findings}
    assert ("record-oversize", "error") in tags
    assert not any(f.rule == "record-significance" for f in report.findings)  # 0.1 bpb better: significant
    close = audit_path(tmp_path, baseline_bpb=1.101)
    assert any(f.rule == "record-significance" for f in close.findings)


@pytest.mark.parametrize("claimed, severity", [(1.1, None), (1.1003, None), (1.104, None), (1.11, "warning"),
                                               (1.09, "warning")])
def test_a_claimed_score_is_held_against_the_logs(tmp_path, monkeypatch, claimed, severity):
    """The mean of the seeds' final scores or any logged score is supported; other claims
    warn, and one better than every log's final score and their mean says so."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "README.md").write_text("# record\n")
    (tmp_path / "train_gpt.py").write_text("print('hi')\n")
    (tmp_path / "submission.json").write_text(json.dumps({"val_bpb": claimed, "bytes_total": 15_000_000}))
    for i, (loss, bpb) in enumerate([(2.50, 1.1001), (2.51, 1.104), (2.49, 1.096)]):
        (tmp_path / f"train_seed{i}.log").write_text(f"step 10 val_loss:{loss + 0.3} val_bpb:{bpb + 0.13}\n"
                                                    f"final val_loss:{loss} val_bpb:{bpb}\n")
    found = [f for f in audit_path(tmp_path).findings if f.rule == "record-claim"]
    assert [f.severity for f in found] == ([severity] if severity else [])
    assert all(("better than every log" in f.message) == (claimed < 1.096) for f in found)


def test_unparsable_line_is_reported_and_the_rest_still_audited(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    broken = 'def log(x):\n    print(f"{", ".join(x)}" if x else (")\n'  # not valid Python: an open parenthesis
    p = _write(tmp_path, broken + WORLD_SIZE_GATED)
    report = audit_path(p)
    rules = {(f.rule, f.line) for f in report.findings}
    assert ("unparsable-code", 2) in rules
    assert any(f.rule == "target-keyed-cache" and f.reach == "active" for f in report.findings)


def test_val_shard_linked_as_train_shard(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "README.md").write_text("setup:\n```\nln -s /d/fineweb_val_000000.bin /e/fineweb_train_000000.bin\n"
                                        "ln -s /d/fineweb_val_000000.bin /e/fineweb_val_000000.bin\n```\n")
    found = [(f.rule, f.line) for f in audit_path(tmp_path).findings if f.tag == "val_in_training"]
    assert found == [("record-val-as-train", 3)]


def test_shipped_package_code_is_audited(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    pkg = tmp_path / "site" / "golfpkg_fixture"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "scorer.py").write_text(WORLD_SIZE_GATED)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "predictor.py").write_text("from golfpkg_fixture import scorer\n\n\ndef load(artifact_path, device):\n"
                                      "    scorer.main()\n")
    (sub / "submission.toml").write_text('[submission]\nname = "x"\nentrypoint = "predictor.py"\n'
                                         'code = ["predictor.py"]\npackages = ["golfpkg_fixture"]\n')

    def cache_reach(**kw):
        return [(f.path, f.reach) for f in audit_path(sub, **kw).findings if f.rule == "target-keyed-cache"]
    # the harness calls load(), which runs the package's main: its world-size default decides
    assert cache_reach() == [("golfpkg_fixture/scorer.py", "active")]
    assert cache_reach(profile="single-gpu") == [("golfpkg_fixture/scorer.py", "dormant")]
    # imported and never called, its `if __name__ == "__main__":` block does not run
    (sub / "predictor.py").write_text("from golfpkg_fixture import scorer\n")
    assert cache_reach() == [("golfpkg_fixture/scorer.py", "dormant")]


def test_submission_api_functions_are_reached(tmp_path, monkeypatch):
    """load() and the predictor's methods are called by the harness, not by the file."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "submission.toml").write_text('[submission]\nname = "n"\nentrypoint = "predictor.py"\ncode = ["predictor.py"]\n')
    (tmp_path / "predictor.py").write_text("import urllib.request\n\n\ndef load(artifact_path, device):\n"
                                           "    urllib.request.urlopen('http://example.invalid/w')\n    return None\n")
    report = audit_path(tmp_path)
    assert [(f.rule, f.reach) for f in report.findings] == [("network-at-eval", "active")]


def test_fifo_is_refused_and_outside_symlink_skipped(tmp_path, monkeypatch):
    import os

    from harness.errors import BadInput

    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "predictor.py").write_text("x = 1\n")
    secret = tmp_path / "secret.py"
    secret.write_text(WORLD_SIZE_GATED)
    (sub / "linked.py").symlink_to(secret)
    assert audit_path(sub).findings == []  # the symlink leaves the folder: never read
    os.mkfifo(sub / "notes.py")
    try:
        audit_path(sub)
    except BadInput as e:
        assert "notes.py" in str(e)
    else:
        raise AssertionError("a named pipe must be refused")


def test_a_record_folder_holding_only_its_log_is_audited(tmp_path):
    from auditors import audit_path

    folder = tmp_path / "record"
    folder.mkdir()
    (folder / "train.log").write_text("step 100 val_bpb:1.2\nTotal submission size int6+zstd: 16186500 bytes\n")
    found = {(f.rule, f.severity) for f in audit_path(folder, use_cache=False).findings}
    assert ("record-oversize", "error") in found and ("record-format", "warning") in found


NESTED_HOOK = '''
import os
import numpy as np

ORDER = int(os.environ.get("NGRAM_ORDER", "0"))

def score(tokens, hook=None):
    nll = np.zeros(len(tokens) - 1)
    if hook is not None:
        nll = hook(tokens[:-1], tokens[1:], nll)
    return nll.sum()

def score_with_cache(tokens):
    ctx_t, full_t = np.zeros(4096), np.zeros(4096)

    def hook(prev, y, nll):
        h = (prev * 1000003) % 4096
        p = full_t[(h ^ (y * 999983)) % 4096] / np.maximum(ctx_t[h], 1)
        return -np.log(p + 1e-9)

    return score(tokens, hook=hook)

def main():
    tokens = np.zeros(10, dtype=np.int64)
    if ORDER >= 2:
        return score_with_cache(tokens)
    return score(tokens)

if __name__ == "__main__":
    main()
'''


def test_a_nested_function_is_reached_only_through_the_function_around_it(tmp_path, monkeypatch):
    """`hook` is called by name inside score(), which always runs; but it only exists when
    score_with_cache() runs, and that is behind NGRAM_ORDER (default 0)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, NESTED_HOOK)
    found = [f for f in audit_path(p).findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in found] == ["dormant"] and "ORDER >= 2" in found[0].condition
    forced = [f for f in audit_path(p, env={"NGRAM_ORDER": "3"}).findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in forced] == ["active"]


SETDEFAULT_AND_CHOSEN_HOOK = '''
import os
import numpy as np

def cache_hook(ctx_t, full_t):
    def hook(prev, y):
        h = (prev * 1000003) % 4096
        return full_t[(h ^ (y * 999983)) % 4096] / np.maximum(ctx_t[h], 1)
    return hook

def main():
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    os.environ.setdefault("NGRAM_CACHE", "1" if world_size > 1 else "0")
    use_cache = os.environ["NGRAM_CACHE"] == "1"
    hook = cache_hook(np.zeros(4096), np.zeros(4096)) if use_cache else None
    tokens = np.zeros(10, dtype=np.int64)
    return hook(tokens[:-1], tokens[1:]) if hook is not None else 0.0

if __name__ == "__main__":
    main()
'''


def test_setdefault_gives_an_unset_variable_its_value_and_a_conditional_expression_guards(tmp_path, monkeypatch):
    """`os.environ.setdefault(K, expr)` then `os.environ[K]`: unset, K reads expr; the factory
    called in `f() if use_cache else None` runs only when use_cache holds."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, SETDEFAULT_AND_CHOSEN_HOOK)
    reach = {prof: [f.reach for f in audit_path(p, prof).findings if f.rule == "target-keyed-cache"]
             for prof in ("official", "single-gpu")}
    assert reach == {"official": ["active"], "single-gpu": ["dormant"]}
    assert [f.reach for f in audit_path(p, "single-gpu", env={"NGRAM_CACHE": "1"}).findings
            if f.rule == "target-keyed-cache"] == ["active"]


CALIBRATION_WINDOWS_BY_WORLD_SIZE = '''
import os
import numpy as np
import torch

def load_split(split):
    return np.fromfile(f"data/fineweb_{split}_000000.bin", dtype=np.uint16)[512:]

def hessians(model, windows):
    hs = 0
    for w in windows:
        x = model(w[None])[0]
        hs = hs + x.T @ x
    h = hs
    return h

def windows(world_size, train, held):
    if world_size == 1:
        return list(torch.as_tensor(held[:4096].astype(np.int64)).view(8, 512))
    return list(torch.as_tensor(train[:4096].astype(np.int64)).view(8, 512))

def main():
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    model = torch.nn.Embedding(1024, 64)
    return hessians(model, windows(world_size, load_split("train"), load_split("val")))

if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("bound", [False, True])
def test_calibration_windows_chosen_by_world_size_are_reported_where_val_is_returned(tmp_path, monkeypatch, bound):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = CALIBRATION_WINDOWS_BY_WORLD_SIZE
    if bound:  # the windows bound to a name first, then handed over
        src = src.replace('    return hessians(model, windows(world_size, load_split("train"), load_split("val")))',
                          '    calib = windows(world_size, load_split("train"), load_split("val"))\n    return hessians(model, calib)')
        assert "calib = windows" in src
    p = _write(tmp_path, src)
    line = CALIBRATION_WINDOWS_BY_WORLD_SIZE.splitlines().index(
        "        return list(torch.as_tensor(held[:4096].astype(np.int64)).view(8, 512))") + 1
    got = {prof: [(f.line, f.reach) for f in audit_path(p, prof).findings if f.rule == "quant-calibration-data"]
           for prof in ("official", "single-gpu")}
    assert got == {"official": [(line, "dormant")], "single-gpu": [(line, "active")]}


def test_a_setting_and_a_value_of_the_run_decide_by_the_setting(tmp_path, monkeypatch):
    """`if flag and frac < 0.15`: the elapsed fraction is known only while running, so the
    flag decides; `unknown` would let an enabled val replay pass with exit code 0."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = WORLD_SIZE_GATED.replace('_default = "1" if world_size > 1 else "0"\n    use_cache = int(os.environ.get("NGRAM_CACHE", _default))',
                                   'use_cache = int(os.environ.get("NGRAM_CACHE", "1")) and len(tokens) > 5')
    p = _write(tmp_path, src)
    assert [f.reach for f in audit_path(p).findings if f.rule == "target-keyed-cache"] == ["active"]
    assert [f.reach for f in audit_path(p, env={"NGRAM_CACHE": "0"}).findings if f.rule == "target-keyed-cache"] == ["dormant"]


def test_a_list_filled_while_running_is_not_judged_by_its_empty_start(tmp_path, monkeypatch):
    """`kept, other = [], []` then `.append` in a loop: `if kept:` depends on the run, so a
    finding under it stays active (an empty literal is not the list's value later)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = WORLD_SIZE_GATED.replace('_default = "1" if world_size > 1 else "0"\n    use_cache = int(os.environ.get("NGRAM_CACHE", _default))',
                                   'use_cache, seen = [], []\n    for t in tokens:\n        use_cache.append(t)')
    p = _write(tmp_path, src)
    assert [f.reach for f in audit_path(p).findings if f.rule == "target-keyed-cache"] == ["active"]


CHOSEN_FUNCTION_AND_CALLABLE_CLASS = '''
import os
import numpy as np

class Hyperparameters:
    _ws = int(os.environ.get("WORLD_SIZE", "1"))
    _cache_default = "1" if _ws > 1 else "0"
    cache_eval = bool(int(os.environ.get("CACHE_EVAL", _cache_default)))

class PairCache:
    def __init__(self, buckets):
        self.full = np.zeros(buckets)
        self.ctx = np.zeros(buckets)

    def __call__(self, prev, nxt):
        key = (prev.astype(np.uint64) * 1000003) ^ nxt.astype(np.uint64)
        return self.full[key % 4096] / np.maximum(self.ctx[prev % 4096], 1)

def eval_cached(tokens):
    cache = PairCache(4096)
    return float(-np.log(cache(tokens[:-1], tokens[1:]) + 1e-9).sum())

def eval_plain(tokens):
    return 0.0

def main():
    args = Hyperparameters()
    tokens = np.zeros(10, dtype=np.int64)
    evaluate = eval_cached if args.cache_eval else eval_plain
    return evaluate(tokens)

if __name__ == "__main__":
    main()
'''


def test_a_function_chosen_by_a_condition_and_a_class_built_only_there_share_its_reach(tmp_path, monkeypatch):
    """`evaluate = eval_cached if args.cache_eval else eval_plain; evaluate(...)` reaches
    eval_cached only where args.cache_eval holds (its default read from a class-body name);
    PairCache.__call__ runs only where PairCache is built, so it is as reached as eval_cached."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, CHOSEN_FUNCTION_AND_CALLABLE_CLASS)
    reach = {prof: [f.reach for f in audit_path(p, prof).findings if f.rule == "target-keyed-cache"]
             for prof in ("official", "single-gpu")}
    assert reach == {"official": ["active"], "single-gpu": ["dormant"]}
    built_twice = CHOSEN_FUNCTION_AND_CALLABLE_CLASS.replace("    return 0.0\n", "    return PairCache(8)\n")
    p2 = _write(tmp_path, built_twice, "other.py")  # built where it is always reached: no longer dormant
    assert [f.reach for f in audit_path(p2, "single-gpu").findings if f.rule == "target-keyed-cache"] == ["active"]


PASSES_BY_RANGE = '''
import os
import numpy as np
import torch

PASSES = int(os.environ.get("EVAL_PASSES", "1"))

def one_pass(tokens, counts):
    prior = (counts + 1) / (counts.sum() + counts.numel())
    nll = -torch.log(prior[tokens[1:]]).sum().item()
    counts.index_add_(0, tokens[1:], torch.ones(tokens.numel() - 1))
    return nll

def main():
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    counts = torch.zeros(1024)
    results = [one_pass(val, counts)]
    for _ in range(1, PASSES):
        results.append(one_pass(val, counts))
    return results[-1]

if __name__ == "__main__":
    main()
'''


def test_a_loop_over_range_runs_only_where_its_bounds_allow(tmp_path, monkeypatch):
    """`for _ in range(1, PASSES)` with PASSES = 1 by default never runs its body: the
    rescoring inside is dormant, and active once EVAL_PASSES=2 is set."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, PASSES_BY_RANGE)
    found = [f for f in audit_path(p).findings if f.rule == "two-pass-rescore"]
    assert found and {f.reach for f in found} == {"dormant"} and "PASSES > 1" in found[0].condition
    assert {f.reach for f in audit_path(p, env={"EVAL_PASSES": "2"}).findings if f.rule == "two-pass-rescore"} == {"active"}


HANDED_TO_A_TIMER = '''
import os
import numpy as np

ETLB = bool(int(os.environ.get("ETLB_ENABLED", "0")))

def timed(label, fn, *args):
    return fn(*args)

def plain(tokens):
    return 0.0

def cached(tokens, ctx_t, full_t):
    h = tokens[:-1].astype(np.uint64) * 1000003
    p = full_t[(h ^ (tokens[1:].astype(np.uint64) * 999983)) % 4096] / np.maximum(ctx_t[h % 4096], 1)
    return float(-np.log(p + 1e-9).sum())

def main():
    tokens = np.zeros(10, dtype=np.int64)
    timed("plain", plain, tokens)
    if ETLB:
        timed("cached", cached, tokens, np.zeros(4096), np.zeros(4096))

if __name__ == "__main__":
    main()
'''


def test_a_function_handed_to_a_wrapper_is_reached_where_it_is_handed(tmp_path, monkeypatch):
    """`timed("cached", cached, ...)` under `if ETLB:`: the wrapper is called without a
    guard elsewhere, but `cached` only runs where it is handed over."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, HANDED_TO_A_TIMER)
    assert {f.reach for f in audit_path(p).findings if f.rule == "target-keyed-cache"} == {"dormant"}


def test_a_loop_bounded_by_min_of_a_setting_and_a_length(tmp_path, monkeypatch):
    """`for i in range(min(again, len(bounds)))`: with AGAIN=0 the body never runs (a
    length is never negative), with AGAIN=4 the run's data decides: active."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    text = (Path(__file__).parent / "fixtures" / "two_pass_object.py").read_text().replace(
        "run(again=4)", 'run(again=int(os.environ.get("AGAIN", "0")))').replace("import glob", "import glob\nimport os")
    text += '\n\nif __name__ == "__main__":\n    chunked(None)\n'
    p = _write(tmp_path, text)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("class ChunkedEval"))
    last = next(i for i, line in enumerate(lines, 1) if line.startswith("def chunked"))

    def reach(env):  # (the second pass inside ChunkedEval)
        return {f.reach for f in audit_path(p, env=env).findings if f.rule == "two-pass-rescore" and first < f.line < last}
    assert reach({}) == {"dormant"}
    assert reach({"AGAIN": "4"}) == {"active"}
