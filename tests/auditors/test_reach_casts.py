"""Reachability through settings helpers that cast the environment's text by the type of
their default: `type(d)(int(v)) if isinstance(d, bool) else type(d)(v)`."""

from __future__ import annotations

import pytest

from auditors import audit_path

PRIOR_BEHIND_A_BOOL_SETTING = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


def E(k, d):
    v = os.environ.get(k)
    if v is None:
        return d
    return type(d)(int(v)) if isinstance(d, bool) else type(d)(v)


PRIOR = E("PRIOR_MIX", False)
WEIGHT = E("PRIOR_WEIGHT", 0.15)


class RunningPrior:
    def __init__(s, dev):
        s.c = torch.ones(1024, dtype=torch.float64, device=dev)

    def ingest(s, toks):
        s.c.index_add_(0, toks.flatten(), torch.ones(toks.numel(), dtype=torch.float64, device=toks.device))

    def logp(s):
        return (s.c / s.c.sum()).log().float()


def cut(val, part, dev, prior):
    x = torch.stack([val[ws:ws + wl] for ws, wl, _ in part]).to(dev)
    y = torch.stack([val[ws + 1:ws + wl + 1] for ws, wl, _ in part]).to(dev)
    ys = [y[j, s0:wl] for j, (ws, wl, s0) in enumerate(part)]
    if prior is not None:
        prior.ingest(torch.cat(ys))
    return x, y, ys


def final(m, val, dev):
    prior = RunningPrior(dev) if PRIOR else None
    nll = 0.0
    with torch.inference_mode():
        for i in range(0, 4096, 32):
            part = [(k, 2048, 64) for k in range(i, i + 32)]
            x, y, ys = cut(val, part, dev, prior)
            z = m(x).float()
            if prior is not None:
                z = z + WEIGHT * prior.logp()
            lp = F.log_softmax(z, -1)
            for j, (ws, wl, s0) in enumerate(part):
                nll -= lp[j, s0:wl].gather(1, ys[j][:, None]).sum()
    return nll


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(final(torch.nn.Identity(), val, "cpu"))
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"PRIOR_MIX": "1"}, "active"), ({"PRIOR_MIX": "0"}, "dormant")])
def test_a_bool_default_cast_through_int_follows_the_environment(tmp_path, monkeypatch, env, reach):
    """`E("PRIOR_MIX", False)` is `bool(int(v))` when set: the prior that counts the targets
    it is then read for (inside a helper handed the prior) runs only where PRIOR_MIX is 1."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(PRIOR_BEHIND_A_BOOL_SETTING)
    line = next(i + 1 for i, s in enumerate(PRIOR_BEHIND_A_BOOL_SETTING.splitlines()) if "prior.ingest(" in s)
    found = [(f.line, f.reach) for f in audit_path(p, env=env).findings if f.rule == "counted-before-scored"]
    assert found == [(line, reach)]
