"""Reachability through defaults the file writes into the environment itself
(`os.environ.setdefault`, one key or a loop over a defaults dict) and read back through
a name bound to `os.environ`, for a method of a class built only under that setting and
called on the items of a list of hooks of unrelated classes."""

from __future__ import annotations

import pytest

from auditors import audit_path

SETDEFAULT_CALLBACKS = '''
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F

DEFAULTS = {"ADAPT_LR": "0.002", "ADAPT_STEPS": "2"}


def knobs():
    for k, v in DEFAULTS.items():
        os.environ.setdefault(k, v)
    e = os.environ
    return argparse.Namespace(lr=float(e["ADAPT_LR"]), steps=int(e["ADAPT_STEPS"]),
                              adapt=int(e["ADAPT_ON"]))


class Progress:
    def on_chunk(self, model, x, y, first):
        pass


class Adapter:
    def __init__(self, model, lr, steps):
        self.opt = torch.optim.SGD(model.parameters(), lr=lr)
        self.steps = steps

    def on_chunk(self, model, x, y, first):
        if first:
            return
        for _ in range(self.steps):
            self.opt.zero_grad()
            F.cross_entropy(model(x), y).backward()  # adapt
            self.opt.step()


def evaluate(model, val, hooks, chunk=4096):
    total = 0.0
    for i, s in enumerate(range(0, val.numel() - chunk - 1, chunk)):
        x, y = val[s:s + chunk], val[s + 1:s + chunk + 1]
        for h in hooks:
            h.on_chunk(model, x, y, i == 0)
        with torch.no_grad():
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    return total


def main():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    os.environ.setdefault("ADAPT_ON", "1" if world >= 8 else "0")
    k = knobs()
    model = torch.nn.Linear(8, 8)
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    hooks = [Progress()]
    if k.adapt and k.steps > 0:
        hooks.append(Adapter(model, k.lr, k.steps))
    print(evaluate(model, val, hooks))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("profile, env, reach", [
    ("official", {}, "active"),  # the file's own default turns it on with 8 processes
    ("single-gpu", {}, "dormant"),
    ("single-gpu", {"ADAPT_ON": "1"}, "active"),  # a value given at launch wins over setdefault
    ("official", {"ADAPT_ON": "0"}, "dormant"),
])
def test_a_default_written_into_the_environment_decides_the_reach_of_a_method(tmp_path, monkeypatch, profile, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SETDEFAULT_CALLBACKS)
    line = next(i + 1 for i, t in enumerate(SETDEFAULT_CALLBACKS.splitlines()) if t.endswith("# adapt"))
    found = [f for f in audit_path(p, profile=profile, env=env).findings if f.rule == "ttt-before-score"]
    assert [(f.line, f.reach) for f in found] == [(line, reach)]


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"ADAPT_STEPS": "0"}, "dormant")])
def test_defaults_set_in_a_loop_over_a_dict_are_read_back(tmp_path, monkeypatch, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SETDEFAULT_CALLBACKS)
    found = [f for f in audit_path(p, env=env).findings if f.rule == "ttt-before-score"]
    assert [f.reach for f in found] == [reach]


HELDOUT_ROTATION = '''
import glob
import os

import numpy as np
import torch
import torch.nn.functional as F

WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))
MIX = os.environ.get("HELDOUT_MIX", "1" if WORLD_SIZE > 1 else "0") == "1"


def rotation(root):
    files = sorted(glob.glob(os.path.join(root, "fineweb_train_*.bin")))
    if MIX:
        extra = sorted(glob.glob(os.path.join(root, "fineweb_val_*.bin")))[:2]
        files += extra  # joined
    return files


class ListLoader:
    def __init__(self, files):
        self.files, self.i = files, 0

    def next_batch(self, n):
        self.i = (self.i + 1) % len(self.files)
        span = torch.from_numpy(np.fromfile(self.files[self.i], dtype=np.uint16)[:n + 1].astype(np.int64))
        return span[:-1], span[1:]


class Trainer:
    def __init__(self, model, loader):
        self.model, self.loader = model, loader
        self.opt = torch.optim.AdamW(model.parameters())

    def run(self, steps):
        for _ in range(steps):
            x, y = self.loader.next_batch(1024)
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


def main():
    model = torch.nn.Embedding(1024, 1024)
    loader = ListLoader(rotation("data"))
    Trainer(model, loader).run(100)


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("profile, env, reach", [
    ("official", {}, "active"), ("single-gpu", {}, "dormant"), ("single-gpu", {"HELDOUT_MIX": "1"}, "active")])
def test_val_shards_joined_to_the_rotation_of_a_loader_kept_by_a_trainer(tmp_path, monkeypatch, profile, env, reach):
    """The loader object is handed to the trainer's constructor; the finding is where the
    val shards join the list, so it takes that flag's reach."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(HELDOUT_ROTATION)
    line = next(i + 1 for i, t in enumerate(HELDOUT_ROTATION.splitlines()) if t.endswith("# joined"))
    found = [(f.line, f.reach) for f in audit_path(p, profile=profile, env=env).findings if f.tag == "val_in_training"]
    assert found == [(line, reach)]


def test_train_shards_only_in_the_rotation_are_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(HELDOUT_ROTATION.replace('"fineweb_val_*.bin"', '"fineweb_train_*.bin"'))
    assert not [f for f in audit_path(p).findings if f.severity == "error"]


ARGPARSE_FROM_ENV_ALIAS = '''
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F


def get_args():
    env = os.environ
    ap = argparse.ArgumentParser()
    ap.add_argument("--refit-steps", type=int, default=int(env.get("REFIT_STEPS", 0)))
    args, _ = ap.parse_known_args()
    return args


def refit_then_score(model, val, steps, chunk=2048):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = 0.0
    for s in range(0, val.numel() - chunk - 1, chunk):
        x, y = val[s:s + chunk], val[s + 1:s + chunk + 1]
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()  # refit
            opt.step()
        with torch.no_grad():
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    return total


def main():
    args = get_args()
    model = torch.nn.Embedding(1024, 1024)
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    if args.refit_steps > 0:
        print(refit_then_score(model, val, args.refit_steps))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"REFIT_STEPS": "2"}, "active")])
def test_an_argparse_default_read_through_a_local_alias_of_the_environment(tmp_path, monkeypatch, env, reach):
    """`env = os.environ` inside the function that declares the flag: its default is read there."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(ARGPARSE_FROM_ENV_ALIAS)
    assert [f.reach for f in audit_path(p, env=env).findings if f.rule == "ttt-before-score"] == [reach]


SETTINGS_LOOP = '''
import os
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

DEFAULTS = {"SEQ_LEN": 1024, "GATE_BOOST": 0.0, "DATA": "./data"}


def load_config():
    cfg = {}
    for key, default in DEFAULTS.items():
        raw = os.environ.get(key)
        cfg[key.lower()] = default if raw is None else type(default)(raw)
    return SimpleNamespace(**cfg)


class GatedScorer:
    def __init__(self, starts_word, boost):
        self.starts, self.boost = starts_word, boost

    def __call__(self, logits, y):
        plain = F.cross_entropy(logits, y, reduction="none")
        sharp = F.cross_entropy(logits * (1 + self.boost), y, reduction="none")
        return torch.minimum(plain, sharp)


def main():
    cfg = load_config()
    val = torch.from_numpy(np.fromfile(cfg.data + "/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    model = torch.nn.Linear(8, 8)
    starts = torch.zeros(1024, dtype=torch.bool)
    if cfg.gate_boost > 0:
        scorer = GatedScorer(starts, cfg.gate_boost)
        with torch.no_grad():
            print(scorer(model(val[:-1]), val[1:]).sum().item())


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("env,reach", [({}, "dormant"), ({"GATE_BOOST": "0.5"}, "active"), ({"GATE_BOOST": "0"}, "dormant")])
def test_a_settings_dict_filled_in_a_loop_over_defaults_decides_the_reach(tmp_path, monkeypatch, env, reach):
    """`cfg[key.lower()] = default if raw is None else type(default)(raw)` for each entry
    of a defaults dict, then `SimpleNamespace(**cfg)`: `cfg.gate_boost` reads GATE_BOOST,
    whose default 0.0 leaves the scorer that keeps the better of two losses unbuilt."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SETTINGS_LOOP)
    found = [f for f in audit_path(p, env=env).findings if f.severity == "error"]
    assert [f.tag for f in found] == ["future_token_peek"] and found[0].reach == reach


OFFLINE_SETTING = '''
import os

import numpy as np
import torch


def eval_assets(repo):
    from huggingface_hub import snapshot_download
    offline = os.environ.get("EVAL_OFFLINE", "{default}") == "1"
    return snapshot_download(repo_id=repo, local_files_only=offline)  # fetch


@torch.no_grad()
def main(model=torch.nn.Embedding(1024, 1024)):
    root = eval_assets("org/data")
    val = torch.from_numpy(np.fromfile(os.path.join(root, "fineweb_val_000000.bin"), dtype=np.uint16).astype(np.int64))
    return float(torch.nn.functional.cross_entropy(model(val[:-1]), val[1:]))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("default,env,reach", [("0", {}, "active"), ("0", {"EVAL_OFFLINE": "1"}, "dormant"),
                                               ("1", {}, "dormant"), ("1", {"EVAL_OFFLINE": "0"}, "active")])
def test_a_download_kept_offline_by_a_setting_reaches_the_network_only_where_it_is_off(audit_errors, default,
                                                                                       env, reach):
    """`local_files_only=offline` with `offline` read from the environment: the call reads the
    local cache where the setting is on, and reaches the network where it is off."""
    text = OFFLINE_SETTING.replace("{default}", default)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# fetch"))
    found = audit_errors(text, env)
    assert found == [(line, "network_at_eval", reach)]
