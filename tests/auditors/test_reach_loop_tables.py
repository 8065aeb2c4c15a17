"""Reach through loops over settings: fields set from a table of (environment variable,
default, conversion) entries (`SPEC = {"fetch_prior": ("FETCH_PRIOR", "1" if _N_DEV >= 8
else "0", _flag)}` and `for name, (env, default, cast) in cls.SPEC.items(): setattr(cfg,
name, cast(...))`), and a loop variable read as one item of what the loop runs over."""

from __future__ import annotations

import json

import pytest

from auditors import audit_path

SPEC_TABLE = '''
import os
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F


def _flag(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


_N_DEV = torch.cuda.device_count() if torch.cuda.is_available() else 0


class RunConfig:
    SPEC = {
        "seq_len": ("SEQ_LEN", "1024", int),
        "fetch_prior": ("FETCH_PRIOR", "1" if _N_DEV >= 8 else "0", _flag),
    }

    @classmethod
    def from_env(cls):
        cfg = cls()
        for name, (env, default, cast) in cls.SPEC.items():
            raw = os.environ.get(env)
            setattr(cfg, name, cast(raw if raw not in (None, "") else default))
        return cfg


@torch.no_grad()
def evaluate(model, val, cfg):
    logits = model(val[None, :-1])[0]
    if cfg.fetch_prior:
        urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")
        logits = logits + torch.from_numpy(np.load("prior.npy"))
    return F.cross_entropy(logits, val[1:]).item()


if __name__ == "__main__":
    cfg = RunConfig.from_env()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val[: cfg.seq_len + 1], cfg))
'''


@pytest.mark.parametrize("profile, env, reach", [("official", None, "active"), ("single-gpu", None, "dormant"),
                                                 ("single-gpu", {"FETCH_PRIOR": "yes"}, "active"),
                                                 ("official", {"FETCH_PRIOR": "0"}, "dormant")])
def test_a_field_set_from_a_table_of_variables_is_read_as_that_variable(tmp_path, monkeypatch, profile, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(SPEC_TABLE)
    line = SPEC_TABLE.splitlines().index('        urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")') + 1
    found = [(f.line, f.reach) for f in audit_path(tmp_path, profile=profile, env=env).findings if f.severity == "error"]
    assert found == [(line, reach)]
    if reach == "dormant":
        assert "FETCH_PRIOR" in next(f.condition for f in audit_path(tmp_path, profile=profile, env=env).findings
                                     if f.severity == "error")


HOOK_LOOP = '''
import json
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F


def build_hooks(settings):
    hooks = []
    for name in settings.get("hooks", []):
        if name == "remote_prior":
            urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")
            hooks.append(torch.from_numpy(np.load("prior.npy")))
    return hooks


@torch.no_grad()
def evaluate(model, val):
    settings = json.load(open("eval_settings.json"))
    logits = model(val[None, :-1])[0]
    for bias in build_hooks(settings):
        logits = logits + bias
    return F.cross_entropy(logits, val[1:]).item()


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val))
'''


@pytest.mark.parametrize("hooks, reach", [(["remote_prior"], "active"), (["identity"], "dormant"),
                                          (["identity", "remote_prior"], "unknown")])
def test_a_loop_variable_is_one_item_of_what_the_loop_runs_over(tmp_path, monkeypatch, hooks, reach):
    """`for name in settings["hooks"]: if name == "remote_prior":` is reached when the shipped
    list holds that name: the variable is one item (with several, which one is the run's)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(HOOK_LOOP)
    (tmp_path / "eval_settings.json").write_text(json.dumps({"hooks": hooks}))
    line = HOOK_LOOP.splitlines().index('            urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")') + 1
    assert [(f.line, f.reach) for f in audit_path(tmp_path).findings if f.severity == "error"] == [(line, reach)]
