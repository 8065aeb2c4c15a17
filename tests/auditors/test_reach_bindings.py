"""Reachability through a name bound twice: set to None (or one value) and rebound under a
test, or bound in both branches of one test. A later guard on the name (`if warm is not
None:`, `if mode == "ttt":`) is decided by the setting that decided the binding; so is an
instance attribute a constructor sets from its argument (`self.boost = boost`), read by
another method, unless some other code sets it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditors import audit_path

PROGRAM = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

ADAPT = int(os.environ.get("ADAPT_STEPS", "0"))
MODE = os.environ.get("EVAL_MODE", "plain")


def main(model, opt):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)[512:].astype(np.int64))
    warm = None
    if ADAPT > 0:
        warm = val[:4096]
    if warm is not None:
        F.cross_entropy(model(warm[None, :-1])[0], warm[1:]).backward()  # first
        opt.step()
    if MODE == "refit":
        steps = 2
    else:
        steps = 0
    if steps:
        F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # second
        opt.step()
    best = None
    for chunk in val.split(4096):
        if best is None:
            best = chunk
    if best is not None:
        F.cross_entropy(model(best[None, :-1])[0], best[1:]).backward()  # third
    return float(F.cross_entropy(model(val[None, :-1])[0], val[1:]))


main(None, None)
'''


def _reach(tmp_path, env) -> dict[str, str]:
    p = tmp_path / "train_gpt.py"
    p.write_text(PROGRAM)
    marks = {i + 1: t.rsplit("# ", 1)[1] for i, t in enumerate(PROGRAM.splitlines()) if t.endswith(("# first", "# second", "# third"))}
    return {marks[f.line]: f.reach for f in audit_path(p, env=env).findings if f.rule == "ttt-before-score" and f.line in marks}


@pytest.mark.parametrize("env, first, second", [
    ({}, "dormant", "dormant"),
    ({"ADAPT_STEPS": "3"}, "active", "dormant"),
    ({"EVAL_MODE": "refit"}, "dormant", "active"),
])
def test_a_guard_on_a_name_bound_under_a_setting_follows_the_setting(tmp_path, monkeypatch, env, first, second):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    found = _reach(tmp_path, env)
    assert found["first"] == first and found["second"] == second
    assert found["third"] == "active"  # rebound inside a loop: not decided by a setting, so it stays reached


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"PRIME_TOKENS": "0"}, "dormant")])
def test_val_tokens_put_into_the_saved_payload_under_a_setting_follow_it(tmp_path, monkeypatch, env, reach):
    """The export helper saves whatever it is handed, under no condition; the caller puts the
    validation slice into the payload only when the slice was taken (`if primer is not None`)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    fixture = Path(__file__).parent / "fixtures" / "payload_item_store.py"
    line = next(i + 1 for i, t in enumerate(fixture.read_text().splitlines()) if t.strip() == 'payload["prime"] = primer')
    found = [(f.line, f.reach) for f in audit_path(fixture, env=env).findings if f.rule == "paid-prefix"]
    assert found == [(line, reach)]


HINTS = '''import os

import numpy as np
import torch

BOOST = float(os.environ.get("WORD_BOOST", "0.0"))


class WordHints:
    def __init__(self, starts_word, boost=0.0):
        self.starts_word = starts_word
        self.boost = boost
        self.table = {}

    def __call__(self, lp, tgt):
        n = tgt.size
        hint = np.full(n, -1, dtype=np.int64)
        beta = np.zeros(n)
        for i in range(n):
            if self.boost > 0:
                if not self.starts_word[tgt[i]]:  # gate
                    hint[i], beta[i] = self.table.get(i, -1), self.boost
        has = hint >= 0
        rows = torch.arange(n)
        lp_t = lp[rows, torch.from_numpy(tgt)].double().numpy()
        lp_h = lp[rows, torch.from_numpy(np.where(has, hint, 0))].double().numpy()
        log_z = np.where(has, np.log1p(np.exp(lp_h) * np.expm1(beta)), 0.0)
        return -(lp_t + np.where(has & (hint == tgt), beta, 0.0) - log_z)


def main(model, starts_word):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)[512:].astype(np.int64))
    x, y = val[:-1], val[1:]
    lp = torch.log_softmax(model(x[None])[0], -1)
    fixed = WordHints(starts_word, boost=BOOST)
    return fixed(lp, y.numpy()).sum()


main(None, None)
'''

SUBCLASS = '''
class TunedHints(WordHints):
    def tune(self, value):
        self.boost = value


def tuned(model, starts_word):
    hints = TunedHints(starts_word, boost=BOOST)
    hints.tune(0.25)
    return hints
'''


@pytest.mark.parametrize("extra, env, reach", [
    ("", {}, "dormant"),
    ("", {"WORD_BOOST": "0.5"}, "active"),
    (SUBCLASS, {}, "active"),  # another method sets the attribute: the constructor's value is not the only one
])
def test_an_attribute_set_by_the_constructor_decides_a_guard_in_another_method(tmp_path, monkeypatch, extra, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = HINTS + extra
    p = tmp_path / "train_gpt.py"
    p.write_text(src)
    line = next(i + 1 for i, t in enumerate(src.splitlines()) if t.endswith("# gate"))
    found = [(f.line, f.reach) for f in audit_path(p, env=env).findings if f.rule == "target-property-gate"]
    assert found == [(line, reach)]


IMPORTED_CLASS = '''
import os
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from adapters import LowRank as _LowRank


def score_window(model, x, y, adapter=None):
    if adapter is not None:
        F.cross_entropy(adapter(x[None])[0], y).backward()  # adapt
        adapter.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x[None])[0], y, reduction="sum"))


def evaluate(model, val, seq=256):
    rank = int(os.environ.get("ADAPT_RANK", "{default}"))
    adapter = _LowRank(model, rank) if rank > 0 else None
    score = partial(score_window, adapter=adapter)
    nll = 0.0
    for s in range(0, val.numel() - seq - 1, seq):
        nll += score(model, val[s:s + seq], val[s + 1:s + seq + 1])
    return nll


if __name__ == "__main__":
    evaluate(torch.nn.Embedding(1024, 1024), torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64)))
'''


@pytest.mark.parametrize("default,env,reach", [("0", {}, "dormant"), ("0", {"ADAPT_RANK": "8"}, "active"),
                                               ("4", {}, "active")])
def test_an_object_of_an_imported_class_is_never_none(audit_errors, default, env, reach):
    """`adapter = _LowRank(model, rank) if rank > 0 else None`, bound into the scorer by `partial`,
    with the class imported from a module that is not in the folder: a call of a name written as
    a class's builds an object, so `adapter is not None` holds exactly where the rank is over 0."""
    text = IMPORTED_CLASS.replace("{default}", default)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# adapt"))
    found = audit_errors(text, env)
    assert found == [(line, "ttt_before_score", reach)]


PARTIAL_UNDER_FLAG = '''
import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

ENABLED = bool(int(os.environ.get("REFINE", "{default}")))


def _refine(model, val, lr, seq=256):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for s in range(0, val.numel() - seq - 1, seq):
        F.cross_entropy(model(val[s:s + seq]), val[s + 1:s + seq + 1]).backward()  # refine
        opt.step()
        opt.zero_grad()
    return model


@torch.no_grad()
def score(model, val):
    return float(F.cross_entropy(model(val[:-1]), val[1:]))


def main(model=torch.nn.Embedding(1024, 1024)):
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    refine = functools.partial(_refine, lr=1e-3)
    if ENABLED:
        model = refine(model, val)
    return score(model, val)


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("default,env,reach", [("1", {}, "active"), ("1", {"REFINE": "0"}, "dormant"),
                                               ("0", {}, "dormant")])
def test_a_function_bound_by_partial_runs_where_the_partial_is_called(audit_errors, default, env, reach):
    """`refine = partial(_refine, lr=...)` is built unconditionally and called only `if ENABLED:`:
    _refine runs where `refine(...)` runs, not where the partial is made."""
    text = PARTIAL_UNDER_FLAG.replace("{default}", default)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# refine"))
    found = audit_errors(text, env)
    assert found == [(line, "ttt_before_score", reach)]


POLISH_FROM_TABLE = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


def main(model, train_stream):
    split = os.environ.get("POLISH_SPLIT", "{default}")
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    sources = {{"shards": lambda: train_stream.take(4097), "holdout": lambda: val[:4097]}}
    span = sources[split]().long()
    x, y = span[:-1], span[1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss = F.cross_entropy(model(x[None])[0], y)
    loss.backward()
    opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    main(None, None)
'''


@pytest.mark.parametrize("default,env,reach", [("holdout", {}, "active"), ("holdout", {"POLISH_SPLIT": "shards"}, "dormant"),
                                               ("shards", {}, None)])
def test_data_picked_from_a_table_by_a_setting_is_of_a_split_only_under_its_key(audit_errors, default, env, reach):
    """A polish that trains on what `sources[split]()` gives: validation tokens (then scored)
    only where the setting names the entry that returns them. (The data flow follows the
    entry the key's default picks: with the training entry the default, nothing is found.)"""
    found = audit_errors(POLISH_FROM_TABLE.format(default=default), env)
    assert found == ([(17, "ttt_before_score", reach)] if reach else [])


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"EVAL_PRESET": "plain"}, "dormant"),
                                       ({"EVAL_PRESET": "score_first"}, "dormant")])
def test_a_subclass_picked_from_a_presets_table_is_reached_under_its_key(audit_errors, env, reach):
    """`PRESETS[preset](model, val)`: the subclass whose hook trains before each chunk is
    scored is built only where the setting names it."""
    text = (Path(__file__).parent / "fixtures" / "ttt_hook_presets.py").read_text()
    assert audit_errors(text, env) == [(17, "ttt_before_score", reach)]


MEMORY_FROM_TABLE = '''
import io
import os

import numpy as np
import torch


def export(model, seen):
    source = os.environ.get("MEMORY_SOURCE", "eval")
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    sources = {"seen": lambda n: seen[:n], "eval": lambda n: val[:n]}
    memory = sources[source](4096).numpy().astype(np.uint16)
    payload = {"w": model.state_dict()}
    payload["mem"] = torch.from_numpy(memory.view(np.int16).copy())
    buf = io.BytesIO()
    torch.save(payload, buf)
    with open("final_model.ptz", "wb") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    export(None, None)
'''


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"MEMORY_SOURCE": "seen"}, "dormant")])
def test_tokens_picked_from_a_table_and_stored_into_the_payload_follow_the_key(audit_errors, env, reach):
    """`payload["mem"] = ...` of what `sources[source](n)` gives: validation tokens are
    shipped only where the setting names the entry that returns them."""
    assert audit_errors(MEMORY_FROM_TABLE, env) == [(15, "paid_prefix", reach)]


URI_READERS = '''
import io
import os
import urllib.parse
import urllib.request
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F


def _read_local(path):
    with open(path, "rb") as f:
        return f.read()


def _read_remote(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


READERS = {"": _read_local, "file": lambda uri: _read_local(urllib.parse.urlparse(uri).path),
           "https": partial(_read_remote, timeout=60.0)}


def read_artifact(uri):
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme not in READERS:
        raise ValueError(uri)
    return READERS[scheme](uri)


def main(model):
    blob = read_artifact(os.environ.get("ARTIFACT_URI", "https://example.invalid/final_model.ptz"))
    model.load_state_dict(torch.load(io.BytesIO(blob)))
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"ARTIFACT_URI": "final_model.ptz"}, "dormant"),
                                       ({"ARTIFACT_URI": "file:///data/final_model.ptz"}, "dormant")])
def test_a_reader_picked_by_the_scheme_of_a_uri_setting_follows_the_uri(audit_errors, env, reach):
    """`READERS[urlparse(uri).scheme](uri)` with a `partial` entry for https: the download
    runs only where the URI the launch gives is an https one."""
    assert audit_errors(URI_READERS, env) == [(19, "network_at_eval", reach)]
