"""A decorator factory applied with `@` runs where the decorated def runs: its wrapper is
as reached as that place (inside `__init__` here, under a setting of the caller)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditors import audit_path

DECORATED_IN_INIT = '''
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

MIX = os.environ.get("CACHE_MIX", "0") == "1"


class Unigram:
    def __init__(self, vocab):
        self.counts = torch.ones(vocab)

    def log_probs(self):
        return (self.counts / self.counts.sum()).log()


def keep_better(expert, weight=0.2):
    def deco(score_fn):
        def wrapper(logits, targets):
            nll_model = score_fn(logits, targets)
            nll_exp = -expert.log_probs().gather(-1, targets[:, None]).squeeze(-1)
            nll_mix = -torch.logaddexp(math.log1p(-weight) - nll_model, math.log(weight) - nll_exp)
            return torch.minimum(nll_model, nll_mix)  # gate
        return wrapper
    return deco


class Scorer:
    def __init__(self, expert, mix):
        if mix:
            @keep_better(expert)
            def token_nll(logits, targets):
                return F.cross_entropy(logits.float(), targets, reduction="none")
            self.token_nll = token_nll

    @torch.no_grad()
    def __call__(self, model, val, seq=1024):
        total = 0.0
        for s in range(0, val.numel() - seq - 1, seq):
            total += self.token_nll(model(val[s:s + seq]), val[s + 1:s + seq + 1]).sum().item()
        return total


def main():
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(Scorer(Unigram(1024), MIX)(torch.nn.Embedding(1024, 1024), val))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("env, reach", [({"CACHE_MIX": "1"}, "active"), ({}, "dormant")])
def test_a_wrapper_applied_by_a_decorator_in_a_method_is_as_reached_as_that_method(tmp_path, monkeypatch, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(DECORATED_IN_INIT)
    line = next(i + 1 for i, t in enumerate(DECORATED_IN_INIT.splitlines()) if t.endswith("# gate"))
    assert [(f.line, f.reach) for f in audit_path(p, env=env).findings if f.rule == "oracle-gate"] == [(line, reach)]


HOOKS = '''
import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

LISTENERS = defaultdict(list)


def listen(event):
    def add(fn):
        LISTENERS[event].append(fn)
        return fn
    return add


def emit(event, report):
    for fn in LISTENERS[event]:
        if os.environ.get("RUN_LISTENERS", "1") == "1":
            fn(report)


@torch.no_grad()
def score(model, val):
    loss = F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()
    return loss, loss / 0.6931471805599453 * val.numel() / max(int((val > 0).sum()), 1)


@listen("final")
def second_opinion(report):
    loss, bpb = score(report["other"], report["tokens"])
    if bpb < report["val_bpb"]:  # kept
        report["val_bpb"] = bpb


def main():
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    model = torch.nn.Embedding(1024, 1024)
    report = {"other": model, "tokens": val}
    report["val_loss"], report["val_bpb"] = score(model, val)
    {emit}
    print(report["val_bpb"])


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("emit, env, reach", [('emit("final", report)', {}, "active"),
                                              ('emit("final", report)', {"RUN_LISTENERS": "0"}, "dormant"),
                                              ("pass", {}, "dormant")])
def test_a_function_a_decorator_puts_in_a_list_runs_where_the_list_is_run(tmp_path, monkeypatch, emit, env, reach):
    """`@listen("final")` appends the function to LISTENERS["final"]; `emit` calls each entry:
    that call (under its guard) is where the hook runs; with no such call nothing runs it."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    source = HOOKS.replace("{emit}", emit)
    p.write_text(source)
    line = next(i + 1 for i, t in enumerate(source.splitlines()) if t.endswith("# kept"))
    assert [(f.line, f.reach) for f in audit_path(p, env=env).findings if f.rule == "lower-result-kept"] == [(line, reach)]


@pytest.mark.parametrize("read, reach", [("len(p.body.encode())", "active"), ("len(p.text.encode())", "dormant")])
def test_a_property_runs_where_its_name_is_read(tmp_path, monkeypatch, read, reach):
    """`p.body` runs the property `body`: the finding inside it is as reached as that read;
    a property nothing reads never runs."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    fixture = (Path(__file__).parent / "fixtures" / "bare_marker_bytes.py").read_text()
    source = fixture.replace('len(self.body.encode("utf-8"))', read.replace("p.", "self."))
    p = tmp_path / "train_gpt.py"
    p.write_text(source)
    assert [f.reach for f in audit_path(p).findings if f.rule == "bare-marker-bytes"] == [reach]


GETTER = '''
import glob

import numpy as np
import torch

SOURCES = {}


def source(name):
    def put(fn):
        SOURCES[name] = fn
        return fn
    return put


def get_source(name):
    if name not in SOURCES:
        raise KeyError(name)
    return SOURCES[name]


@source("tail")
def tail_rows(pattern="data/fineweb_*.bin", n=8, seq=512):
    last = sorted(glob.glob(pattern))[-1]
    toks = torch.from_numpy(np.fromfile(last, dtype=np.uint16).astype(np.int64))
    return list(toks[: n * seq].view(n, seq).split(2))


@torch.no_grad()
def hessians(net, rows):
    hs = {}
    for name, mod in net.named_modules():
        if isinstance(mod, torch.nn.Linear):
            hs[name] = torch.zeros(mod.in_features, mod.in_features)
            mod.register_forward_hook(lambda m, i, o, name=name: hs[name].add_(i[0].flatten(0, -2).T @ i[0].flatten(0, -2)))
    for r in rows:
        net(r)
    return hs


def main(net):
    {pick}
    return hessians(net, rows)


if __name__ == "__main__":
    main(torch.nn.Linear(512, 512))
'''


@pytest.mark.parametrize("pick, found", [('pick = get_source("tail")\n    rows = pick()', ["active"]),
                                         ('rows = []', [])])
def test_a_function_a_getter_returns_from_a_registry_runs_where_the_getter_s_result_is_called(tmp_path, monkeypatch,
                                                                                            pick, found):
    """`get_source(name)` returns `SOURCES[name]`, which `@source("tail")` fills: calling what the
    getter returned calls the registered function (here one whose last shard is the
    validation shard, used for calibration); with no such call nothing calibrates on it."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(GETTER.replace("{pick}", pick))
    assert [f.reach for f in audit_path(p).findings if f.rule == "quant-calibration-data"] == found
