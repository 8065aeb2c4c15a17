"""Reachability through settings written in less common forms: an alias of argparse's
`add_argument`, dataclass fields read from the environment in a loop, keys of a dict built
with `dict(...)` and extended by `.update(...)`, a getter a factory makes that tries a
prefixed variable first, helpers nested in the function that reads the setting, a class made by
`type()` from a dict whose entries a loop overrides from the environment, a flag filled in when
it was left unset, a dict comprehension over a defaults dict that reads `PG_<KEY>`. Each module guards
the same test-time training step."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditors import audit_path

DRIVER = '''
import argparse
import os
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

{settings}


def main():
    {setup}
    model = torch.nn.Linear(8, 8)
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    if {condition}:
        F.cross_entropy(model(val[:-1]), val[1:]).backward()  # adapt
        opt.step()


if __name__ == "__main__":
    main()
'''

ALIASED_ADD = '''
E = os.environ.get


def parse_args():
    p = argparse.ArgumentParser()
    a = p.add_argument
    a("--adapt-steps", type=int, default=int(E("ADAPT_STEPS", "2")))
    return p.parse_args()
'''

FIELDS_FROM_ENV = '''
@dataclass
class Config:
    seq_len: int = 1024
    adapt_steps: int = 0
    use_slot: bool = False

    @classmethod
    def from_env(cls):
        kw = {}
        for f in fields(cls):
            raw = os.environ.get("PG_" + f.name.upper())
            if raw is not None:
                kw[f.name] = raw
        return cls(**kw)
'''

DICT_UPDATE = '''
def _e(k, d, t=str):
    v = os.environ.get(k)
    return d if v is None else t(v)


CFG = dict(seed=_e("SEED", 1337, int), lr=_e("LR", 0.02, float))
CFG.update(adapt_steps=_e("ADAPT_STEPS", 60, int))
'''

PREFIXED_GETTER = '''
def make_getter(prefix):
    def get(name, default, cast=str):
        raw = os.environ.get(prefix + name)
        if raw is None:
            raw = os.environ.get(name)
        return default if raw is None else cast(raw)
    return get


G = make_getter("PG_")
'''

NESTED_HELPER_SETUP = """def env(name, default, cast=str):
        raw = os.environ.get(name)
        return default if raw is None or raw == "" else cast(raw)

    def env_flag(name, default):
        return str(env(name, default)).strip().lower() in ("1", "true", "yes", "on")

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    use_ttt = env_flag("TTT", "1" if world_size > 1 else "0")"""

CLASS_SETTINGS = """class Hyperparameters:
    adapt = bool(int(os.environ.get("ADAPT", "1")))"""

OVERRIDE_SETUP = """args = Hyperparameters()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        args.adapt = False  # 1-GPU runs skip it"""

FIELDS_COMPREHENSION = """def _env(name, default):
    raw = os.environ.get(name)
    return default if raw is None else type(default)(raw)


@dataclass
class Config:
    adapt_epochs: int = 0

    @classmethod
    def from_env(cls):
        return cls(**{f.name: _env(f.name.upper(), f.default) for f in fields(cls)})"""

FIELDS_KEY_NAMED = """def _env(name, default, cast):
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else cast(raw)


@dataclass
class Config:
    adapt_epochs: int = 0

    @classmethod
    def from_env(cls):
        cfg = cls()
        for f in fields(cls):
            key = f.name.upper()
            setattr(cfg, f.name, _env(key, getattr(cfg, f.name), type(getattr(cfg, f.name))))
        return cfg"""

TYPE_CLASS = """CFG = dict(adapt_source="ar", seq=2048)
for _k, _v in list(CFG.items()):
    if _k.upper() in os.environ:
        CFG[_k] = type(_v)(os.environ[_k.upper()])
C = type("C", (), CFG)"""

FLAG_UNSET = """p = argparse.ArgumentParser()
p.add_argument("--adapt", type=int, default=None)"""

FLAG_UNSET_SETUP = """args = p.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.adapt is None:
        args.adapt = 1 if world > 1 else 0"""

DICT_LOOP = """CFG = dict(adapt_steps=0, seq=2048)
for _k, _v in list(CFG.items()):
    _e = os.environ.get(_k.upper())
    if _e is not None:
        CFG[_k] = type(_v)(_e)"""

DICT_COMPREHENSION = """DEFAULTS = dict(adapt_beta=0.0, seq=2048)


def _parse(raw, default):
    return type(default)(raw)


C = {k: _parse(os.environ["PG_" + k.upper()], v) if "PG_" + k.upper() in os.environ else v
     for k, v in DEFAULTS.items()}"""

CASES = {
    "fields comprehension": (FIELDS_COMPREHENSION, "cfg = Config.from_env()", "cfg.adapt_epochs > 0"),
    "fields loop with the key in a name": (FIELDS_KEY_NAMED, "cfg = Config.from_env()", "cfg.adapt_epochs > 0"),
    "attribute set under a condition": (CLASS_SETTINGS, OVERRIDE_SETUP, "args.adapt"),
    "helpers nested in main": ("", NESTED_HELPER_SETUP, "use_ttt"),
    "aliased add_argument": (ALIASED_ADD, "args = parse_args()", "args.adapt_steps > 0"),
    "dataclass fields from env": (FIELDS_FROM_ENV, "cfg = Config.from_env()", "cfg.adapt_steps > 0 or cfg.use_slot"),
    "dict update": (DICT_UPDATE, "pass", 'CFG["adapt_steps"] > 0'),
    "prefixed getter": (PREFIXED_GETTER, "pass", 'G("ADAPT", 0, int) > 0'),
    "class made by type() from a dict": (TYPE_CLASS, "pass", 'C.adapt_source == "val"'),
    "flag filled in when unset": (FLAG_UNSET, FLAG_UNSET_SETUP, "args.adapt"),
    "dict rewritten by a loop": (DICT_LOOP, "pass", 'CFG["adapt_steps"] > 0'),
    "dict comprehension over defaults": (DICT_COMPREHENSION, "pass", 'C["adapt_beta"] > 0'),
}


@pytest.mark.parametrize("case,env,reach", [
    # `a = p.add_argument; a("--adapt-steps", default=int(E("ADAPT_STEPS", "2")))`: the flag's default decides
    ("aliased add_argument", {}, "active"),
    ("aliased add_argument", {"ADAPT_STEPS": "0"}, "dormant"),
    # `for f in fields(cls): os.environ.get("PG_" + f.name.upper())`: each field reads its own variable,
    # converted like its default; unset, the class default holds
    ("dataclass fields from env", {}, "dormant"),
    ("dataclass fields from env", {"PG_ADAPT_STEPS": "3"}, "active"),
    ("dataclass fields from env", {"PG_USE_SLOT": "yes"}, "active"),
    ("dataclass fields from env", {"ADAPT_STEPS": "3"}, "dormant"),
    # `CFG = dict(...)`, then `CFG.update(adapt_steps=_e("ADAPT_STEPS", 60, int))`: the key reads its variable
    ("dict update", {}, "active"),
    ("dict update", {"ADAPT_STEPS": "0"}, "dormant"),
    # `G = make_getter("PG_")`: `PG_<NAME>`, then `<NAME>`, then the default
    ("prefixed getter", {}, "dormant"),
    ("prefixed getter", {"PG_ADAPT": "1"}, "active"),
    ("prefixed getter", {"ADAPT": "1"}, "active"),
    ("prefixed getter", {"PG_ADAPT": "0", "ADAPT": "1"}, "dormant"),
    # `def main(): def env_flag(...)`: a helper nested in the function that reads the setting is inlined too
    ("helpers nested in main", {}, "active"),
    ("helpers nested in main", {"WORLD_SIZE": "1"}, "dormant"),
    ("helpers nested in main", {"WORLD_SIZE": "1", "TTT": "yes"}, "active"),
    # `if world_size == 1: args.adapt = False` after `args = Hyperparameters()`: that value where it holds
    ("attribute set under a condition", {}, "active"),
    ("attribute set under a condition", {"WORLD_SIZE": "1"}, "dormant"),
    ("attribute set under a condition", {"ADAPT": "0"}, "dormant"),
    # `cls(**{f.name: _env(f.name.upper(), f.default) for f in fields(cls)})`: a helper handed each field's key
    ("fields comprehension", {}, "dormant"),
    ("fields comprehension", {"ADAPT_EPOCHS": "6"}, "active"),
    # `key = f.name.upper()` in the loop, then `_env(key, ...)`: the key a name holds
    ("fields loop with the key in a name", {}, "dormant"),
    ("fields loop with the key in a name", {"ADAPT_EPOCHS": "6"}, "active"),
    # `for _k, _v in list(CFG.items()): if _k.upper() in os.environ: CFG[_k] = type(_v)(...)`, then
    # `C = type("C", (), CFG)`: each entry reads its own variable, else keeps its default
    ("class made by type() from a dict", {}, "dormant"),
    ("class made by type() from a dict", {"ADAPT_SOURCE": "val"}, "active"),
    ("class made by type() from a dict", {"ADAPT_SOURCE": "ar"}, "dormant"),
    # `--adapt` defaults to None, then `if args.adapt is None: args.adapt = 1 if world > 1 else 0`
    ("flag filled in when unset", {}, "active"),
    ("flag filled in when unset", {"WORLD_SIZE": "1"}, "dormant"),
    # the same loop rewriting the dict it iterates, read back as `CFG["adapt_steps"]`
    ("dict rewritten by a loop", {}, "dormant"),
    ("dict rewritten by a loop", {"ADAPT_STEPS": "5"}, "active"),
    # `C = {k: parse(os.environ["PG_" + k.upper()], v) if ... in os.environ else v for k, v in DEFAULTS.items()}`
    ("dict comprehension over defaults", {}, "dormant"),
    ("dict comprehension over defaults", {"PG_ADAPT_BETA": "0.6"}, "active"),
    ("dict comprehension over defaults", {"ADAPT_BETA": "0.6"}, "dormant"),
])
def test_settings_forms_decide_the_reach(tmp_path, monkeypatch, case, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    settings, setup, condition = CASES[case]
    p = tmp_path / "train_gpt.py"
    p.write_text(DRIVER.format(settings=settings, setup=setup, condition=condition))
    assert [f.reach for f in audit_path(p, env=env).findings if f.tag == "ttt_before_score"] == [reach]


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"GPTQ_RESERVE_SECONDS": "0"}, "active"),
                                       ({"GPTQ_RESERVE_SECONDS": "12"}, "dormant")])
def test_calibration_after_training_is_reached_only_where_the_reserve_stays_zero(audit_errors, env, reach):
    """The training cap is lowered by a reserve setting whose default is 0: as written nothing is
    reserved and the calibration on training shards runs outside the budget; a launch that sets
    the reserve pays for it (the finding is dormant there, `not (args.gptq_reserve_seconds)`)."""
    text = (Path(__file__).parent / "fixtures" / "calibration_zero_setting.py").read_text() + "\n\nmain(None)\n"
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: train-data-at-eval")
    found = audit_errors(text, env)
    assert found == [(line, "train_data_at_eval", reach)]


BEST_OF_RESULTS = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


def _env(name, default, cast=None):
    raw = os.environ.get(name)
    if raw is None:
        return default
    return (cast or type(default))(raw)


PASSES = _env("EXTRA_PASSES", {default})


@torch.no_grad()
def score(model, val, temperature=1.0):
    return float(F.cross_entropy(model(val[:-1]) / temperature, val[1:]))


def main(model=torch.nn.Embedding(1024, 1024)):
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    results = {"plain": score(model, val)}
    if PASSES > 0:
        results["cool"] = score(model, val, 0.9)
    best = min(results, key=lambda k: results[k])  # best
    return results[best]


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("default,env,reach", [("1", {}, "active"), ("1", {"EXTRA_PASSES": "0"}, "dormant"),
                                               ("0", {}, "dormant"), ("0", {"EXTRA_PASSES": "2"}, "active")])
def test_the_best_of_a_dict_of_results_is_a_choice_only_where_a_second_entry_is_added(audit_errors, default,
                                                                                        env, reach):
    """`results = {"plain": ...}`, then `if PASSES > 0: results["cool"] = ...`: the minimum picks
    among scorings only where the second is added. PASSES is read by a helper that returns the
    default when unset and casts the text with `(cast or type(default))` when set."""
    text = BEST_OF_RESULTS.replace("{default}", default)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# best"))
    found = audit_errors(text, env)
    assert found == [(line, "two_pass_rescore", reach)]


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"GPTQ_RESERVE_S": "12"}, "dormant")])
def test_a_local_reserve_setting_of_zero_guards_the_calibration_after_training(audit_errors, env, reach):
    """`budget_ms -= 1000 * reserve_s` with `reserve_s` read from the environment, default 0:
    the finding is reached where the reserve stays 0 (`not (reserve_s)`)."""
    text = (Path(__file__).parent / "fixtures" / "calibration_zero_local.py").read_text() + "\n\ntrain(None)\n"
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: train-data-at-eval")
    found = audit_errors(text, env)
    assert found == [(line, "train_data_at_eval", reach)]


@pytest.mark.parametrize("env,reach", [({"WORLD_SIZE": "1"}, "active"), ({"WORLD_SIZE": "8"}, "dormant"),
                                       ({"WORLD_SIZE": "8", "SMOKE_ON_VAL": "1"}, "active")])
def test_val_shards_picked_by_a_setting_in_a_helper_take_its_reach(audit_errors, env, reach):
    """`training_shards(hp)` returns the val shards under `if hp.smoke_on_val:` (on by default
    for one process): validation data is trained on where that setting holds, and only there."""
    text = (Path(__file__).parent / "fixtures" / "val_shards_by_setting.py").read_text()
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: val-in-training")
    assert audit_errors(text, env) == [(line, "val_in_training", reach)]


@pytest.mark.parametrize("env,reach", [({"WORLD_SIZE": "1"}, "active"), ({"WORLD_SIZE": "8"}, "dormant")])
def test_a_preset_picked_from_a_table_decides_the_reach_by_its_fields(audit_errors, env, reach):
    """`preset = resolve_preset(ws)` returns `PRESETS["record"] if ws >= 8 else PRESETS["compact"]`;
    only the compact preset sets `repair_steps`, so `if preset.repair_steps > 0:` holds on one GPU
    (the keyword of that construction) and not on eight (the class default, 0)."""
    text = (Path(__file__).parent / "fixtures" / "train_after_export.py").read_text()
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: train-data-at-eval")
    assert audit_errors(text, env) == [(line, "train_data_at_eval", reach)]
