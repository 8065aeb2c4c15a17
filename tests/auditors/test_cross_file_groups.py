"""An importer read together with all the siblings it imports: a loop in the entry over one
sibling's generator of steps that calls the methods of another sibling's class."""

from __future__ import annotations

import pytest

from auditors import audit_path

PLAN = '''
from dataclasses import dataclass

ORDER = {order}


@dataclass(frozen=True)
class Step:
    kind: str
    chunk: int
    lo: int
    hi: int


def steps(total, chunk):
    n = (total + chunk - 1) // chunk
    for c in range(n):
        for what in ORDER:
            yield Step(kind=what, chunk=c, lo=c * chunk, hi=min((c + 1) * chunk, total))
'''

SESSION = '''
import torch
import torch.nn.functional as F


class Adapter:
    def __init__(self, model, tokens):
        self.model, self.tokens = model, tokens
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        self.nll, self.count = 0.0, 0

    @torch.no_grad()
    def measure(self, step):
        part = self.tokens[step.lo:step.hi + 1]
        self.nll += F.cross_entropy(self.model(part[None, :-1])[0], part[1:], reduction="sum").item()
        self.count += step.hi - step.lo

    def fit(self, step):
        part = self.tokens[step.lo:step.hi + 1]
        self.opt.zero_grad()
        F.cross_entropy(self.model(part[None, :-1])[0], part[1:]).backward()
        self.opt.step()
'''

ENTRY = '''
import numpy as np
import torch
from plan import steps
from session import Adapter


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    runner = Adapter(model, val)
    actions = {"measure": runner.measure, "fit": runner.fit}
    for step in steps(val.numel() - 1, 4096):
        actions[step.kind](step)
    return runner.nll / runner.count

if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("order, flagged", [('("measure", "fit")', False), ('("fit", "measure")', True)])
def test_the_order_of_a_plan_in_one_sibling_decides_the_training_in_another(tmp_path, monkeypatch, order, flagged):
    """The entry dispatches `actions[step.kind](step)` over `steps(...)` of plan.py, whose
    items take their kind from a loop over ORDER; the methods are Adapter's of session.py.
    Read only in pairs (entry + plan, entry + session), no module holds both the order and the
    training, and the score-first plan was a false alarm."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "plan.py").write_text(PLAN.format(order=order))
    (tmp_path / "session.py").write_text(SESSION)
    (tmp_path / "train_gpt.py").write_text(ENTRY)
    found = [(f.path, f.tag) for f in audit_path(tmp_path).findings if f.severity == "error"]
    assert found == ([("session.py", "ttt_before_score")] if flagged else [])


MIXING = '''
import torch


def fold(columns, bits):
    h = torch.zeros_like(columns[0])
    for i, c in enumerate(columns):
        h = (h ^ (c * (2654435761 + 2 * i))) & ((1 << bits) - 1)
    return h
'''

COUNTS = '''
import torch

from mixing import fold


class Counts:
    def __init__(self, bits):
        self.bits = bits
        self.seen = torch.zeros(1 << bits)
        self.after = torch.zeros(1 << bits)

    def slots(self, prev, nxt):
        return fold([prev], self.bits), fold([prev, nxt], self.bits)

    def probability(self, seen_slot, after_slot):
        return self.after[after_slot] / self.seen[seen_slot].clamp_min(1.0)

    def add(self, seen_slot, after_slot):
        self.seen.index_add_(0, seen_slot, torch.ones_like(seen_slot, dtype=torch.float))
        self.after.index_add_(0, after_slot, torch.ones_like(after_slot, dtype=torch.float))
'''

COUNTS_ENTRY = '''
import numpy as np
import torch
import torch.nn.functional as F
from counts import Counts


def evaluate(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    table, total = Counts(20), 0.0
    for s in range(0, val.numel() - 1025, 1024):
        x, y = val[s:s + 1024], val[s + 1:s + 1025]
        with torch.no_grad():
            p = F.softmax(model(x[None])[0], -1).gather(-1, y[:, None])[:, 0]
        a, b = table.slots({prev}, {nxt})
        p = 0.8 * p + 0.2 * table.probability(a, b)
        total += -torch.log(p).sum().item()
        table.add(a, b)
    return total

if __name__ == "__main__":
    evaluate(None)
'''


@pytest.mark.parametrize("nxt, flagged", [("y", True), ("x", False)])
def test_a_key_made_in_a_module_that_an_imported_sibling_imports_is_read_with_the_importer(
        tmp_path, monkeypatch, nxt, flagged):
    """train_gpt.py imports counts.py, which imports mixing.py: the key of `fold([prev, nxt])`
    holds the target only when the entry hands it y, and the three files are read as one."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "mixing.py").write_text(MIXING)
    (tmp_path / "counts.py").write_text(COUNTS)
    (tmp_path / "train_gpt.py").write_text(COUNTS_ENTRY.format(prev="x", nxt=nxt))
    found = {f.tag for f in audit_path(tmp_path).findings if f.severity == "error"}
    assert ("target_in_key_ngram" in found) == flagged


CALIB = '''
import torch
import torch.nn.functional as F


def keep_scale(z, y, **_):
    return torch.ones((), dtype=z.dtype)


def newton_scale(z, y, iters=3):
    zy = z.double().gather(-1, y[:, None]).squeeze(-1)
    b = torch.ones((), dtype=torch.float64)
    for _ in range(iters):
        p = F.softmax(b * z.double(), dim=-1)
        ez = (p * z).sum(-1)
        b = b - (ez - zy).mean() / ((p * z * z).sum(-1) - ez * ez).mean().clamp_min(1e-6)
    return b.float()


SCALERS = {"none": keep_scale, "newton": newton_scale}
'''

SCORER = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

import calib

MODE = os.environ.get("CALIB_MODE", "none")


def evaluate(model, val):
    scale = calib.SCALERS[MODE]
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(val) - 1025, 1024):
            x, ys = val[s:s + 1024], val[s + 1:s + 1025]
            z = model(x[None])[0].float()
            inv_t = scale(z, ys, iters=3)
            total += F.cross_entropy(z * inv_t, ys, reduction="sum").item()
    return total


if __name__ == "__main__":
    print(evaluate(torch.nn.Identity(), torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16))))
'''


@pytest.mark.parametrize("mode, found", [("newton", [("train_gpt.py", 20, "active")]), ("none", [])])
def test_a_table_of_a_sibling_module_read_as_its_attribute_dispatches_to_its_functions(tmp_path, monkeypatch, mode, found):
    """`calib.SCALERS[MODE]` reads the table `calib.py` defines: its Newton entry, picked by
    the key's default, is fitted on the targets the importer then scores with it. (The entry
    a key's constant default picks is the one followed: see docs/AUDIT.md.)"""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "calib.py").write_text(CALIB)
    (tmp_path / "train_gpt.py").write_text(SCORER.replace('"CALIB_MODE", "none"', f'"CALIB_MODE", "{mode}"'))
    assert [(f.path, f.line, f.reach) for f in audit_path(tmp_path).findings if f.rule == "fitted-on-scored"] == found
