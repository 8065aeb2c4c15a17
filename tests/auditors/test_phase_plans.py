"""The order of a chunk's phases chosen by a setting, in a settings namespace that gets
its fields (the validation pattern, the order) assigned after it is built; and a loss
name bound again after the training loop (an evaluation's loss) that does not make the
training loop's backward pass look like it trains on validation data."""

from __future__ import annotations

import pytest

from auditors import audit_path

PHASE_PLAN = '''
import glob
import os
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F


def settings():
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    hp = SimpleNamespace(root=os.environ.get("DATA_PATH", "data"), chunk=4096, steps=100, mode="plain")
    hp.train_glob = os.path.join(hp.root, "fineweb_train_*.bin")
    hp.val_glob = os.path.join(hp.root, "fineweb_val_*.bin")
    hp.order = os.environ.get("PHASE_ORDER", "fit_first" if ws >= 8 else "score_first")
    return hp


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(1024, 1024)

    def forward(self, x, y=None):
        logits = self.emb(x)
        return logits if y is None else F.cross_entropy(logits, y)


def tokens(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]).astype(np.int64))


def chunked_eval(model, ids, hp):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = [0.0]

    def score(lo):
        with torch.no_grad():
            total[0] += F.cross_entropy(model(ids[lo:lo + hp.chunk]), ids[lo + 1:lo + hp.chunk + 1], reduction="sum").item()

    def fit(lo):
        opt.zero_grad()
        model(ids[lo:lo + hp.chunk], ids[lo + 1:lo + hp.chunk + 1]).backward()
        opt.step()

    phases = {"score": score, "fit": fit}
    plan = ("fit", "score") if hp.order == "fit_first" else ("score", "fit")
    for lo in range(0, ids.numel() - hp.chunk - 1, hp.chunk):
        for name in plan:
            phases[name](lo)  # phases
    return total[0], total[0] / 3.5


@torch.no_grad()
def plain_eval(model, ids, hp):
    nll = model(ids[:-1], ids[1:])
    return nll, nll / 3.5


EVALUATORS = {"plain": plain_eval}


def main():
    hp = settings()
    model = LM()
    train = tokens(hp.train_glob)
    opt = torch.optim.AdamW(model.parameters())
    step = 0
    while step < hp.steps:
        x, y = train[step * 512:(step + 1) * 512], train[step * 512 + 1:(step + 1) * 512 + 1]
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()  # training
        opt.step()
        step += 1
    val = tokens(hp.val_glob)
    loss, bpb = EVALUATORS[hp.mode](model, val, hp)
    print(loss, bpb, chunked_eval(model, val, hp))


if __name__ == "__main__":
    main()
'''


def _audit(tmp_path, monkeypatch, source, **kw):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(source)
    return audit_path(p, **kw).findings


def _line(source: str, tag: str) -> int:
    return next(i + 1 for i, t in enumerate(source.splitlines()) if t.endswith(f"# {tag}"))


@pytest.mark.parametrize("profile, env, reach", [
    ("official", {}, "active"), ("single-gpu", {}, "dormant"),
    ("single-gpu", {"PHASE_ORDER": "fit_first"}, "active"), ("official", {"PHASE_ORDER": "score_first"}, "dormant")])
def test_a_phase_order_chosen_by_a_setting_takes_its_reach(tmp_path, monkeypatch, profile, env, reach):
    found = [(f.line, f.reach) for f in _audit(tmp_path, monkeypatch, PHASE_PLAN, profile=profile, env=env)
             if f.tag == "ttt_before_score" and f.severity == "error"]
    assert found == [(_line(PHASE_PLAN, "phases"), reach)]


def test_the_fixed_score_first_order_is_clean_and_the_training_loop_trains_on_training_data(tmp_path, monkeypatch):
    src = PHASE_PLAN.replace('plan = ("fit", "score") if hp.order == "fit_first" else ("score", "fit")',
                             'plan = ("score", "fit")')
    assert 'plan = ("score", "fit")' in src
    assert not [f for f in _audit(tmp_path, monkeypatch, src) if f.severity == "error"]


def test_a_loss_name_bound_again_after_the_loop_keeps_the_training_loss_apart(tmp_path, monkeypatch):
    found = _audit(tmp_path, monkeypatch, PHASE_PLAN.replace('plan = ("fit", "score") if hp.order == "fit_first" else ("score", "fit")',
                                                             'plan = ("score", "fit")'))
    assert not [f for f in found if f.tag == "val_in_training"]
