"""Classes built from a dispatch table (`ADAPTERS[mode](model)` over `{"none": NoAdapt,
"tent": Tent}` or `{c.name: c for c in (NoAdapt, Tent)}`): a method called on the object
may be any entry's, and each entry is built only where the key selects it; and a table of
phase functions run in the order of a schedule string that a settings table sets."""

from __future__ import annotations

import pytest

from auditors import audit_path

TABLE = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


class NoAdapt:
    name = "none"

    def __init__(self, model):
        self.model = model

    def prepare(self, chunk):
        return None


class Tent:
    name = "tent"

    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def prepare(self, chunk):
        p = F.log_softmax(self.model(chunk[None])[0], -1)
        ent = -(p.exp() * p).sum(-1).mean()
        ent.backward()
        self.opt.step()
        self.opt.zero_grad()


ADAPTERS = {TABLE_BODY}


def evaluate(model, val, chunk=4096):
    adapter = ADAPTERS[os.environ.get("EVAL_ADAPT", "none")](model)
    nll = 0.0
    for lo in range(0, val.numel() - 1, chunk):
        adapter.prepare(val[lo:lo + chunk])
        with torch.no_grad():
            nll += F.cross_entropy(model(val[None, lo:lo + chunk])[0], val[lo + 1:lo + chunk + 1], reduction="sum").item()
    return nll


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val))
'''


@pytest.mark.parametrize("body", ['{"none": NoAdapt, "tent": Tent}', "{c.name: c for c in (NoAdapt, Tent)}"])
@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"EVAL_ADAPT": "tent"}, "active")])
def test_a_method_of_a_class_built_from_a_table_is_reached_where_its_key_is_chosen(tmp_path, body, env, reach):
    text = TABLE.replace("{TABLE_BODY}", body)
    (tmp_path / "train_gpt.py").write_text(text)
    line = text.splitlines().index("        ent.backward()") + 1
    found = [(f.line, f.tag, f.reach) for f in audit_path(tmp_path, env=env, use_cache=False).findings if f.severity == "error"]
    assert found == [(line, "ttt_before_score", reach)]


SCHEDULE = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

PHASES = {}
_SPEC = [
    ("TTT_EPOCHS", int, 1),
    ("TTT_SCHEDULE", str, "score,adapt,settle"),
]


def load_args():
    a = type("A", (), {})()
    for name, typ, default in _SPEC:
        raw = os.environ.get(name)
        setattr(a, name.lower(), typ(raw) if raw is not None else default)
    return a


def phase(name):
    def deco(fn):
        PHASES[name] = fn
        return fn
    return deco


@phase("score")
def score_chunk(model, x, y, out):
    with torch.no_grad():
        out.append(F.cross_entropy(model(x[None])[0], y, reduction="sum").item())


@phase("settle")
def settle_chunk(model, x, y, out):
    out.pop()
    score_chunk(model, x, y, out)


@phase("adapt")
def adapt_chunk(model, x, y, out):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    F.cross_entropy(model(x[None])[0], y).backward()
    opt.step()


def run(model, val, schedule, size=4096):
    names = [s.strip() for s in schedule.split(",") if s.strip()]
    out = []
    for lo in range(0, val.numel() - 1, size):
        for name in names:
            PHASES[name](model, val[lo:lo + size], val[lo + 1:lo + size + 1], out)
    return sum(out)


if __name__ == "__main__":
    a = load_args()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(run(torch.nn.Embedding(1024, 1024), val, a.ttt_schedule))
'''


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"TTT_SCHEDULE": "score,adapt"}, "dormant")])
def test_a_schedule_string_read_from_a_table_of_settings_decides_a_rescoring_phase(tmp_path, env, reach):
    """`for name, typ, default in _SPEC: setattr(a, name.lower(), ...)` sets `a.ttt_schedule`;
    "score,adapt,settle" scores each chunk again after training on it, "score,adapt" does not."""
    (tmp_path / "train_gpt.py").write_text(SCHEDULE)
    line = SCHEDULE.splitlines().index("            PHASES[name](model, val[lo:lo + size], val[lo + 1:lo + size + 1], out)") + 1
    found = [(f.line, f.reach) for f in audit_path(tmp_path, env=env, use_cache=False).findings if f.rule == "rescored-phase"]
    assert found == [(line, reach)]
