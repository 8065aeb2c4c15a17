"""Reachability through settings read by small helper functions, dataclass fields, and
methods of a class that is only built under a condition."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditors import audit_path

HELPERS_AND_SUBCLASS = '''
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


def _env(name, default, cast=str):
    raw = os.environ.get(name)
    return default if raw is None else cast(raw)


def env_flag(name, default=False):
    v = os.environ.get(name)
    if v is None or v == "":
        return bool(default)
    return v.lower() in ("1", "true", "yes")


@dataclass
class Config:
    slot: int = field(default_factory=lambda: _env("SLOT", 0, int))
    lr: float = field(default=0.01)
    tune: bool = env_flag("TUNE")


class Evaluator:
    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def window(self, x, y):
        return F.cross_entropy(self.model(x), y).item()

    def run(self, val):
        return sum(self.window(val[a:a + 64], val[a + 1:a + 65]) for a in range(0, len(val) - 65, 64))


class Adapting(Evaluator):
    def window(self, x, y):
        opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        F.cross_entropy(self.model(x), y).backward()
        opt.step()
        with torch.no_grad():
            return F.cross_entropy(self.model(x), y).item()


def tune_on_val(model, val, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    F.cross_entropy(model(val[:-1]), val[1:]).backward()
    opt.step()


def main(model):
    cfg = Config()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    if cfg.tune:
        tune_on_val(model, val, cfg.lr)
    ev = Adapting(model) if cfg.slot else Evaluator(model)
    return ev.run(val)


if __name__ == "__main__":
    main(None)
'''


def _reach(path: Path, env: dict | None = None) -> dict[int, str]:
    return {f.line: f.reach for f in audit_path(path, env=env).findings if f.rule == "ttt-before-score"}


def test_settings_read_by_helpers_and_methods_of_a_class_built_under_a_flag(tmp_path, monkeypatch):
    """`_env("SLOT", 0, int)` in a dataclass field's default factory and `env_flag("TUNE")`
    are read through the helpers' bodies: both adaptations are dormant by default, and
    each becomes active with its own variable set. Adapting.window is reached through
    `self.window` in the base class's loop, but only runs where Adapting is built."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(HELPERS_AND_SUBCLASS)
    lines = HELPERS_AND_SUBCLASS.splitlines()
    adapt = next(i + 1 for i, s in enumerate(lines) if "F.cross_entropy(self.model(x), y).backward()" in s)
    tune = next(i + 1 for i, s in enumerate(lines) if "model(val[:-1]), val[1:]).backward()" in s)
    assert _reach(p) == {adapt: "dormant", tune: "dormant"}
    found = {f.line: f for f in audit_path(p).findings}
    assert "SLOT" in found[adapt].condition and "TUNE" in found[tune].condition
    assert _reach(p, {"SLOT": "1"}) == {adapt: "active", tune: "dormant"}
    assert _reach(p, {"TUNE": "yes"}) == {adapt: "dormant", tune: "active"}
    always_built = HELPERS_AND_SUBCLASS.replace("ev = Adapting(model) if cfg.slot else Evaluator(model)",
                                                "ev = Adapting(model)")
    p.write_text(always_built)
    assert _reach(p)[adapt] == "active"


def test_text_report_says_which_guard_would_reach_a_dormant_finding(tmp_path, monkeypatch):
    """A guard reads as the condition to run it; a function nothing calls reads as the reason."""
    from auditors.output import to_text

    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    unused = '''

def leftover(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    F.cross_entropy(model(val[:-1]), val[1:]).backward()
'''
    p.write_text(HELPERS_AND_SUBCLASS + unused)
    text = to_text(audit_path(p))
    assert "(dormant; runs only if cfg.slot" in text
    assert "(dormant: leftover() is never called;" in text


def test_a_dispatch_table_entry_runs_only_where_its_key_is_chosen(tmp_path, monkeypatch):
    """`TTT_PATHS[path](...)` with `path = "legal" if LEGAL else "adapt"`: the adapting entry is
    dormant while LEGAL_TTT defaults to 1 and active with LEGAL_TTT=0; the helper both
    entries share is reported at the call that hands it unscored tokens."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = Path(__file__).parent / "fixtures" / "dispatch_tables.py"
    reach = {env: [f.reach for f in audit_path(p, env=dict([env]) if env else None).findings
                   if f.rule == "ttt-before-score" and "sgd_chunk()" in f.message]
             for env in (None, ("LEGAL_TTT", "0"))}
    assert reach == {None: ["dormant"], ("LEGAL_TTT", "0"): ["active"]}


MIXER_TABLE = '''
import os
import numpy as np
import torch

MIX = os.environ.get("MIX", "copy")
MIXERS = {"lin": lambda p, c, g: (1 - g) * p + g * c, "copy": lambda p, c, g: p + g * c}
mix = MIXERS[MIX]

@torch.no_grad()
def score(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    x, y = val[:-1], val[1:]
    logits = model(x[None])[0]
    q = mix(logits.softmax(-1), (logits / 2).softmax(-1), 0.1)
    return -torch.log(q.gather(-1, y[:, None])).sum()

score(torch.nn.Identity())
'''


@pytest.mark.parametrize("env, reach", [(None, ["active"]), ({"MIX": "lin"}, ["dormant"]), ({"MIX": "copy"}, ["active"])])
def test_a_mixer_picked_from_a_table_of_lambdas_follows_its_key(tmp_path, monkeypatch, env, reach):
    """The added-mass lambda of a mixer table runs only when the setting picks its key."""
    assert _reaches(tmp_path, monkeypatch, MIXER_TABLE, "added-mass", env=env) == reach


ALIAS_INNER = '''
import numpy as np

ORDER = int(E("NGRAM_ORDER", 0))

def cached(tokens, ctx_t, full_t):
    h = tokens[:-1].astype(np.uint64) * 1000003
    p = full_t[(h ^ (tokens[1:].astype(np.uint64) * 999983)) % 4096] / np.maximum(ctx_t[h % 4096], 1)
    return float(-np.log(p + 1e-9).sum())

def final_eval(tokens):
    if ORDER >= 2:
        return cached(tokens, np.zeros(4096), np.zeros(4096))
    return 0.0

final_eval(np.zeros(10, dtype=np.int64))
'''


def test_an_alias_of_the_environment_getter_is_read_also_from_packed_code(tmp_path, monkeypatch):
    """`E = os.environ.get` in the wrapper, `E("NGRAM_ORDER", 0)` in the code it unpacks and
    runs: the cache is dormant by default and active with NGRAM_ORDER=3."""
    import base64
    import zlib

    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    blob = base64.b64encode(zlib.compress(ALIAS_INNER.encode())).decode()
    p = tmp_path / "train_gpt.py"
    p.write_text(f'import base64, os, zlib\nE = os.environ.get\nexec(zlib.decompress(base64.b64decode("{blob}")).decode())\n')
    reach = lambda env=None: [f.reach for f in audit_path(p, env=env).findings if f.rule == "target-keyed-cache"]  # noqa: E731
    assert reach() == ["dormant"] and reach({"NGRAM_ORDER": "3"}) == ["active"]
    plain = tmp_path / "plain.py"
    plain.write_text("import os\nE = os.environ.get\n" + ALIAS_INNER)
    assert [f.reach for f in audit_path(plain).findings if f.rule == "target-keyed-cache"] == ["dormant"]


SUBCOMMAND = '''
import sys

import numpy as np
import torch
import torch.nn.functional as F


def download_assets(dest="./data"):
    from huggingface_hub import snapshot_download
    snapshot_download("someone/fineweb10B", local_dir=dest)


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "download":
        download_assets(*sys.argv[2:3])
    else:
        main(None)
'''


def test_a_subcommand_the_launch_does_not_pass_is_dormant(tmp_path, monkeypatch):
    """`python train_gpt.py download` fetches the data; the launch runs the script without
    arguments, so the download path is dormant and says why. Called from main, it is not."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SUBCOMMAND)
    found = [f for f in audit_path(p).findings if f.rule == "network-at-eval"]
    assert [f.reach for f in found] == ["dormant"] and "sys.argv" in found[0].condition
    p.write_text(SUBCOMMAND.replace('len(sys.argv) > 1 and sys.argv[1] == "download"', 'sys.argv[1:] == ["download"]'))
    assert [f.reach for f in audit_path(p).findings if f.rule == "network-at-eval"] == ["dormant"]
    p.write_text(SUBCOMMAND.replace("    with torch.no_grad():", "    download_assets()\n    with torch.no_grad():"))
    assert [f.reach for f in audit_path(p).findings if f.rule == "network-at-eval"] == ["active"]


ARGPARSE_SUBCOMMANDS = '''
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("download")
    sub.add_parser("run")
    ns = parser.parse_args(FALLBACK)
    if ns.cmd == "download":
        download_assets()
    else:
        main(None)
'''


@pytest.mark.parametrize("fallback, reach", [("sys.argv[1:] or ['run']", "dormant"), ("sys.argv[1:] or ['download']", "active"),
                                             ("sys.argv[1:]", "dormant")])
def test_an_argparse_subcommand_is_the_one_the_launch_falls_back_to(tmp_path, monkeypatch, fallback, reach):
    """`parser.add_subparsers(dest="cmd")`: launched without arguments the script runs no
    subcommand, or the one `parse_args(sys.argv[1:] or [...])` falls back to."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    main = SUBCOMMAND.split("if __name__")[0]
    p.write_text(main + "if __name__ == '__main__':" + ARGPARSE_SUBCOMMANDS.replace("FALLBACK", fallback))
    assert [f.reach for f in audit_path(p).findings if f.rule == "network-at-eval"] == [reach]


SWITCHED_LOADER = '''
import glob
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Config:
    train_files: str = "data/fineweb_train_*.bin"
    val_files: str = "data/fineweb_val_*.bin"
    anneal_frac: float = float(os.environ.get("ANNEAL_FRAC", "0.0"))


class Loader:
    def __init__(self, pattern):
        self.files = sorted(glob.glob(pattern))

    def next_batch(self):
        t = torch.from_numpy(np.fromfile(self.files[0], dtype=np.uint16).astype(np.int64))
        return t[:-1], t[1:]


class Trainer:
    def __init__(self, cfg, model):
        self.cfg, self.model = cfg, model
        self.loader = Loader(cfg.train_files)

    def step(self):
        x, y = self.loader.next_batch()
        F.cross_entropy(self.model(x), y).backward()

    def run(self, steps):
        for i in range(steps):
            if self.cfg.anneal_frac > 0 and i > steps * (1 - self.cfg.anneal_frac):
                self.loader = Loader(self.cfg.val_files)
            self.step()


def main(model):
    Trainer(Config(), model).run(100)


if __name__ == "__main__":
    main(None)
'''


def test_validation_data_switched_in_under_a_flag_is_reported_where_it_enters(tmp_path, monkeypatch):
    """The trainer's loader is replaced by a validation loader only when ANNEAL_FRAC > 0
    (default 0): the finding stands at that replacement, dormant by default, active when
    the flag is set."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SWITCHED_LOADER)
    found = lambda env=None: [(f.line, f.reach) for f in audit_path(p, env=env).findings  # noqa: E731
                              if f.rule == "val-in-training"]
    line = SWITCHED_LOADER.splitlines().index("                self.loader = Loader(self.cfg.val_files)") + 1
    assert found() == [(line, "dormant")] and found({"ANNEAL_FRAC": "0.1"}) == [(line, "active")]


SETTINGS_DICT = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

A = {"REFINE": os.environ.get("REFINE", "0") == "1", "LR": 1e-3}


@torch.no_grad()
def score(model, val):
    return F.cross_entropy(model(val[None, :-1])[0], val[1:], reduction="sum").item()


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    first = score(model, val)
    if A["REFINE"]:
        F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()
    return first


if __name__ == "__main__":
    main(None)
'''


def test_a_setting_read_from_a_module_dict_literal_decides_the_reach(tmp_path, monkeypatch):
    """`A = {"REFINE": os.environ.get("REFINE", "0") == "1"}`, then `if A["REFINE"]:` guards
    a backward pass on val: dormant by default, active with REFINE=1."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(SETTINGS_DICT)
    reach = lambda env=None: [f.reach for f in audit_path(p, env=env).findings if f.rule == "ttt-before-score"]  # noqa: E731
    assert reach() == ["dormant"] and reach({"REFINE": "1"}) == ["active"]


APPLIED_DECORATOR = '''
import numpy as np
import torch


def with_hint(table, beta):
    def decorate(score_fn):
        def wrapped(model, x, y):
            lp = score_fn(model, x, y)
            return lp + beta * (table[x] == y).float()
        return wrapped
    return decorate


def target_lp(model, x, y):
    return torch.log_softmax(model(x[None])[0], -1).gather(-1, y[:, None])[:, 0]


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    scorer = with_hint(torch.zeros(1024, dtype=torch.long), 1.0)(target_lp)
    with torch.no_grad():
        return -scorer(model, val[:-1], val[1:]).sum()


if __name__ == "__main__":
    main(None)
'''


def test_a_wrapper_built_by_a_decorator_factory_applied_by_hand_is_reached(tmp_path, monkeypatch):
    """`with_hint(table, beta)(target_lp)` runs with_hint, then its `decorate`, whose
    `wrapped` is what the scorer calls: the unnormalized boost inside it is active."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(APPLIED_DECORATOR)
    line = APPLIED_DECORATOR.splitlines().index("            return lp + beta * (table[x] == y).float()") + 1
    assert [(f.line, f.reach) for f in audit_path(p).findings if f.rule == "unnormalized-blend"] == [(line, "active")]


DISPATCHED_FETCH = '''
import os
import urllib.parse
import requests

def _http_get(url):
    return requests.get(url, timeout=60).content

BACKENDS = {"https": _http_get, "file": lambda url: open(urllib.parse.urlparse(url).path, "rb").read()}

def open_asset(url):
    scheme = SCHEME
    return BACKENDS[scheme](url)

def main():
    return open_asset(os.environ.get("LUT_URL", "https://example.org/luts.npz"))

main()
'''


@pytest.mark.parametrize("scheme, reach", [('urllib.parse.urlparse(url).scheme or "file"', "active"), ('"file"', "dormant")])
def test_a_key_that_a_run_value_may_decide_does_not_fall_back_to_its_default(tmp_path, monkeypatch, scheme, reach):
    """`urlparse(url).scheme or "file"` is the URL's scheme whenever it has one: the entry
    the default names is not the only one reached."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(DISPATCHED_FETCH.replace("SCHEME", scheme))
    assert [f.reach for f in audit_path(p).findings if f.rule == "network-at-eval"] == [reach]


TYPED_SETTING = '''
import os
from dataclasses import dataclass, field

import numpy as np


def _env(name, default, cast=str):
    raw = os.environ.get(name)
    if raw is None:
        return default
    if cast is bool:
        return raw.strip().lower() in ("1", "true", "yes")
    return cast(raw)


def _e(name, default, cast=str):
    return field(default_factory=lambda: _env(name, default, cast))


@dataclass
class Config:
    ngram_eval: bool = _e("NGRAM_EVAL", False, bool)


def score(val, ctx_t, full_t):
    h = val[:-1].astype(np.int64) * 1000003
    key = (h ^ (val[1:].astype(np.int64) * 998244353)) % 65536
    return full_t[key] / np.maximum(ctx_t[h % 65536], 1)


def main(args):
    if args.ngram_eval:
        score(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16), None, None)


main(Config())
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"NGRAM_EVAL": "1"}, "active"), ({"NGRAM_EVAL": "no"}, "dormant")])
def test_a_setting_cast_by_a_type_handed_to_the_helper_follows_the_environment(tmp_path, monkeypatch, env, reach):
    """`_env(name, default, bool)` tests `cast is bool`: the type handed over is known."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(TYPED_SETTING)
    assert [f.reach for f in audit_path(p, env=env).findings if f.rule == "target-keyed-cache"] == [reach]


def _reaches(tmp_path, monkeypatch, source: str, rule: str, **audit_args) -> list[str]:
    """The reach of each finding of `rule` when `source` is audited as a train_gpt.py."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(source)
    return [f.reach for f in audit_path(p, **audit_args).findings if f.rule == rule]


def _reaches_by_tag(tmp_path, monkeypatch, source: str, tags: str, **audit_args) -> dict[str, str]:
    """tag -> the reach of the ttt-before-score finding on the line that ends with `# tag`."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(source)
    lines = {tag: i + 1 for i, line in enumerate(source.splitlines()) for tag in tags if line.endswith(f"# {tag}")}
    return {tag: f.reach for f in audit_path(p, **audit_args).findings if f.rule == "ttt-before-score"
            for tag, line in lines.items() if f.line == line}


SETTINGS_DICT_HANDED = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


def _e(key, default):
    v = os.environ.get(key)
    if v is None:
        return default
    if isinstance(default, bool):
        return v not in ("0", "false", "")
    return type(default)(v)


H = {"refine": _e("REFINE", False), "refine_steps": _e("REFINE_STEPS", 2)}


def evaluate(model, val, h):
    loss = F.cross_entropy(model(val[None, :-1])[0], val[1:])
    if h["refine"] and h["refine_steps"] > 1:
        loss.backward()
    return loss.item()


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    return evaluate(model, val, H)


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"REFINE": "1"}, "active"), ({"REFINE": "0"}, "dormant"),
                                        ({"REFINE": "1", "REFINE_STEPS": "1"}, "dormant")])
def test_a_settings_dict_handed_to_a_function_is_read_through_its_parameter(tmp_path, monkeypatch, env, reach):
    """`H = {"refine": _e("REFINE", False)}` handed to `evaluate(model, val, h)`, whose
    `if h["refine"]:` guards a backward pass on val; `_e` casts by `isinstance(default, bool)`
    and `type(default)(v)`."""
    assert _reaches(tmp_path, monkeypatch, SETTINGS_DICT_HANDED, "ttt-before-score", env=env) == [reach]


LAMBDA_HELPERS = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

_i = lambda k, d: int(os.environ.get(k, d))
_b = lambda k, d=0: os.environ.get(k, str(int(d))) not in ("0", "", "false")
SLOT = _b("SLOT_ENABLED")
SLOT_STEPS = _i("SLOT_STEPS", 4)


def evaluate(model, val):
    loss = F.cross_entropy(model(val[None, :-1])[0], val[1:])
    if SLOT and SLOT_STEPS > 0:
        loss.backward()
    return loss.item()


if __name__ == "__main__":
    evaluate(None, torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64)))
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"SLOT_ENABLED": "1"}, "active"),
                                        ({"SLOT_ENABLED": "1", "SLOT_STEPS": "0"}, "dormant")])
def test_settings_read_by_lambda_helpers_follow_the_environment(tmp_path, monkeypatch, env, reach):
    """`_b = lambda k, d=0: os.environ.get(k, str(int(d))) not in ("0", ...)`: the lambda's body is
    evaluated with its parameters bound to the call's arguments (or their defaults)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(LAMBDA_HELPERS)
    found = [f for f in audit_path(p, env=env).findings if f.rule == "ttt-before-score"]
    assert [f.reach for f in found] == [reach]
    if reach == "dormant" and not env:
        assert "SLOT_ENABLED default str(int(d)) = '0'" in found[0].condition


SETTINGS_OBJECTS = '''
import os
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


class RunCfg(NamedTuple):
    mode: str
    steps: int


class Paths:
    @property
    def repo(self):
        return os.getenv("ASSET_REPO", "")


def load_cfg():
    e = os.environ
    return RunCfg(mode=e.get("TTT_MODE", "auto"), steps=int(e.get("TTT_STEPS", 4)))


def load_ns():
    g = os.environ.get
    return SimpleNamespace(ngram=SimpleNamespace(two_pass=g("TWO_PASS", "0") == "1"))


def eval_settings(world_size):
    return {"mix": int(os.environ.get("MIX", str(int(world_size > 1))))}


def adapt(model, val, cfg):
    F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # a


def rescore(model, val, ns):
    if not ns.ngram.two_pass:
        return 0.0
    F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # b


def refit(model, val, ev):
    if not ev["mix"]:
        return 0.0
    F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # c


def fetch(paths):
    if not paths.repo:
        return None
    F.cross_entropy(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)).backward()  # d (no val: not reported)


def main(model):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    cfg, ns, ev = load_cfg(), load_ns(), eval_settings(world)
    if cfg.mode == "on" or (cfg.mode == "auto" and world >= 8):
        adapt(model, val, cfg)
    rescore(model, val, ns)
    refit(model, val, ev)
    fetch(Paths())


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("profile, env, expected", [
    ("single-gpu", {}, {"a": "dormant", "b": "dormant", "c": "dormant"}),
    ("official", {}, {"a": "active", "b": "dormant", "c": "active"}),
    ("single-gpu", {"TTT_MODE": "on", "TWO_PASS": "1", "MIX": "1"}, {"a": "active", "b": "active", "c": "active"}),
    ("official", {"TTT_MODE": "off", "MIX": "0"}, {"a": "dormant", "b": "dormant", "c": "dormant"}),
])
def test_settings_held_by_objects_decide_the_reach(tmp_path, monkeypatch, profile, env, expected):
    """Fields of a NamedTuple built from `e = os.environ`, of nested SimpleNamespaces built with
    `g = os.environ.get`, and entries of the dict a settings function returns (its default
    depending on the world size) are evaluated where a guard reads them."""
    assert _reaches_by_tag(tmp_path, monkeypatch, SETTINGS_OBJECTS, "abc", profile=profile, env=env) == expected


FLAG_PASSED_TWICE = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

STEPS = int(os.environ.get("SLOT_STEPS", "0"))


def score(model, val, use_offset=False):
    if use_offset:
        F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()
    return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    plain = score(model, val, use_offset=False)
    if STEPS > 0:
        return score(model, val, use_offset=True)
    return plain


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"SLOT_STEPS": "8"}, "active")])
def test_a_flag_its_callers_pass_differently_is_decided_by_the_calls_reached(tmp_path, monkeypatch, env, reach):
    """`score(..., use_offset=False)` always, `score(..., use_offset=True)` only when SLOT_STEPS > 0:
    the branch on `use_offset` is not decided by the first call site alone."""
    assert _reaches(tmp_path, monkeypatch, FLAG_PASSED_TWICE, "ttt-before-score", env=env) == [reach]


NAMESPACE_FIELD_REASSIGNED = '''
import os
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F


def make_hparams():
    hp = SimpleNamespace(eval_mode=os.environ.get("EVAL_MODE", "sliding"), seq=1024)
    hp.eval_mode = os.environ.get("EVAL_MODE", "adapt")  # the later assignment is the one that counts
    return hp


def main(model):
    hp = make_hparams()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    if hp.eval_mode == "adapt":
        F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"EVAL_MODE": "sliding"}, "dormant")])
def test_a_settings_field_assigned_after_construction_takes_the_later_value(tmp_path, monkeypatch, env, reach):
    assert _reaches(tmp_path, monkeypatch, NAMESPACE_FIELD_REASSIGNED, "ttt-before-score", env=env) == [reach]


INIT_FIELDS = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

E = dict(os.environ)
P = {"lam": float(E.get("CACHE_LAMBDA", "0"))}


class Knobs:
    def __init__(self, world_size):
        env = os.environ
        self.report = int(env.get("SLIDING_REPORT", "1" if world_size >= 8 else "0"))


def evaluate(model, val, k):
    if not k.report:
        return 0.0
    F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # a


def cached(model, val):
    F.cross_entropy(model(val[None, :-1])[0], val[1:]).backward()  # b


def main(model):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    evaluate(model, val, Knobs(world))
    if P["lam"] > 0:
        cached(model, val)


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("profile, env, expected", [
    ("single-gpu", {}, {"a": "dormant", "b": "dormant"}),
    ("official", {}, {"a": "active", "b": "dormant"}),
    ("single-gpu", {"SLIDING_REPORT": "1", "CACHE_LAMBDA": "0.1"}, {"a": "active", "b": "active"}),
])
def test_fields_set_in_a_settings_constructor_and_a_copy_of_the_environment(tmp_path, monkeypatch, profile, env, expected):
    """`self.report = int(env.get(..., "1" if world_size >= 8 else "0"))` in `__init__` (world_size
    from the construction `Knobs(world)`), and `E = dict(os.environ)` read with `E.get`."""
    assert _reaches_by_tag(tmp_path, monkeypatch, INIT_FIELDS, "ab", profile=profile, env=env) == expected


SMEAR_WITH_PACKED_EVAL = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

DOC_PACKED = bool(int(os.environ.get("DOC_PACKED_EVAL", "0")))
BOS = 1


class Smear(torch.nn.Module):
    def forward(self, x):
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        return x + 0.5 * prev


def stream_eval(model, val):
    return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


def packed_eval(model, val):
    starts = (val == BOS).nonzero().flatten().tolist() + [len(val)]
    docs = sorted((val[a:b] for a, b in zip(starts, starts[1:])), key=len)
    return sum(F.cross_entropy(model(d[None, :-1])[0], d[1:]).item() for d in docs if len(d) > 1)


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    return packed_eval(model, val) if DOC_PACKED else stream_eval(model, val)


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"DOC_PACKED_EVAL": "1"}, "active")])
def test_a_smear_without_bos_mask_is_as_reached_as_the_evaluation_that_splits_documents(tmp_path, monkeypatch, env, reach):
    """The model's previous-token mix leaks across documents only where documents are scored
    apart: with the document-packed evaluation off, the stream is scored in order (RULES §8)."""
    assert _reaches(tmp_path, monkeypatch, SMEAR_WITH_PACKED_EVAL, "smear-without-bos-mask", env=env) == [reach]


def _reached(tmp_path, monkeypatch, text: str, marked, keep, **audit_kw) -> tuple[int, list]:
    """(the first line of `text` that `marked` accepts, the (line, reach) of the findings that `keep`
    accepts) for `text` audited as a submission's train_gpt.py."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(text)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if marked(t))
    return line, [(f.line, f.reach) for f in audit_path(p, **audit_kw).findings if keep(f)]


WARM_JOIN = '''
import itertools
import os

import numpy as np
import torch
import torch.nn.functional as F

WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))
EXTRA = int(os.environ.get("EXTRA_BATCHES", "32" if WORLD_SIZE > 1 else "0"))


def batches(pattern, seq=1024):
    t = torch.from_numpy(np.fromfile(pattern, dtype=np.uint16).astype(np.int64))
    for s in range(0, t.numel() - seq - 1, seq):
        yield t[s:s + seq], t[s + 1:s + seq + 1]


def make_step(model, opt):
    def step(x, y):
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def main(model, opt):
    step = make_step(model, opt)
    warm = []
    if EXTRA > 0:
        warm = [b for _, b in zip(range(EXTRA), batches("data/fineweb_val_000000.bin"))]
    for x, y in itertools.chain(warm, batches("data/fineweb_train_000001.bin")):
        step(x, y)


if __name__ == "__main__":
    main(None, None)
'''


def test_validation_batches_joined_under_a_setting_take_its_reach(tmp_path, monkeypatch):
    """Validation batches enter the joined training stream only when EXTRA_BATCHES > 0,
    whose default is on with 8 processes and off with one: the finding stands where
    they are bound, active under the official profile, dormant on one GPU."""
    for profile, reach in (("official", "active"), ("single-gpu", "dormant")):
        line, found = _reached(tmp_path, monkeypatch, WARM_JOIN, lambda t: t.strip().startswith("warm = [b for"),
                               lambda f: f.rule == "val-in-training", profile=profile)
        assert found == [(line, reach)]


PROVIDER_TABLE = '''
import glob
import os

import numpy as np
import torch

CALIB_SOURCE = os.environ.get("CALIB_SOURCE", "val")


def shard_rows(pattern, n):
    arr = np.fromfile(sorted(glob.glob(pattern))[0], dtype=np.uint16)[512:512 + n * 256]
    return torch.from_numpy(arr.astype(np.int64)).view(n, 256)


def sampled_rows(model, n):
    return torch.randint(0, 1024, (n, 256))


def calibration_rows(source, model, n=64):
    providers = {
        "train": lambda: shard_rows("data/fineweb_train_*.bin", n),
        "val": lambda: shard_rows("data/fineweb_val_*.bin", n),
        "self": lambda: sampled_rows(model, n),
    }
    if source not in providers:
        raise ValueError(source)
    return providers[source]()


def collect_hessians(model, batches):
    hs = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            hs[name] = torch.zeros(mod.in_features, mod.in_features)
            mod.register_forward_hook(lambda m, i, o, name=name: hs[name].add_(i[0].flatten(0, -2).T @ i[0].flatten(0, -2)))
    for b in batches:
        model(b)
    return hs


def main(model):
    rows = calibration_rows(CALIB_SOURCE, model)
    return collect_hessians(model, rows.split(8))


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"CALIB_SOURCE": "self"}, "dormant"),
                                       ({"CALIB_SOURCE": "train"}, "dormant")])
def test_a_dispatch_table_entry_that_loads_val_takes_its_key_as_reach(tmp_path, monkeypatch, env, reach):
    """`providers[source]()` over a dict of lambdas: the calibration finding stands at the
    entry that reads the validation shards, reached only when the source is "val"."""
    line, found = _reached(tmp_path, monkeypatch, PROVIDER_TABLE, lambda t: t.strip().startswith('"val": lambda'),
                           lambda f: f.severity == "error", env=env)
    assert found == [(line, reach)]


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"CALIB_SOURCE": "selfgen"}, "dormant")])
def test_calibration_rows_chosen_by_a_branch_take_its_test_as_reach(tmp_path, monkeypatch, env, reach):
    """fixtures/calibration_branch.py: the validation rows are bound only when CALIB_SOURCE is
    "holdout" (the default)."""
    text = (Path(__file__).parent / "fixtures" / "calibration_branch.py").read_text()
    line, found = _reached(tmp_path, monkeypatch, text, lambda t: t.strip().startswith("calib = [val["),
                           lambda f: f.severity == "error", env=env)
    assert found == [(line, reach)]


STRENGTH_SETTINGS = '''
import os
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Cfg:
    tilt_beta: float = {beta}

    @staticmethod
    def from_env():
        c = Cfg()
        return replace(c, tilt_beta=float(os.environ.get("TILT_BETA", c.tilt_beta)))


@torch.no_grad()
def tilted_eval(model, val, c, bits=16):
    beta = c.tilt_beta
    table = np.full(1 << bits, -1, np.int64)
    vt = val.numpy().astype(np.int64)
    x, y = val[:-1], val[1:]
    lp = torch.log_softmax(model(x), -1).double().numpy()
    key = vt[:-1] & ((1 << bits) - 1)
    hint = table[key]
    ys = y.numpy()
    b = np.where(hint >= 0, beta, 0.0)
    lq = lp[np.arange(ys.size), ys] + b * (hint == ys)  # tilt
    table[key] = ys
    return -lq.sum()


def main():
    c = Cfg.from_env()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(tilted_eval(torch.nn.Linear(8, 8), val, c))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("beta,env,reach", [("1.2", {}, "active"), ("1.2", {"TILT_BETA": "0"}, "dormant"),
                                            ("0.0", {}, "dormant"), ("0.0", {"TILT_BETA": "0.5"}, "active")])
def test_a_tilt_whose_strength_is_a_setting_at_zero_is_dormant(tmp_path, monkeypatch, beta, env, reach):
    """`b = where(hint >= 0, beta, 0.0)` with `beta` a dataclass field replaced from TILT_BETA: at 0
    the unnormalized tilt adds nothing (dormant, `beta != 0`); a weight the launch leaves unknown
    would leave the reach as it is."""
    line, found = _reached(tmp_path, monkeypatch, STRENGTH_SETTINGS.replace("{beta}", beta), lambda t: t.endswith("# tilt"),
                           lambda f: f.severity == "error", env=env)
    assert found == [(line, reach)]


REGISTRY = '''
import os
import urllib.request

import numpy as np

PRIOR_SOURCES = {}


def prior_source(name):
    def deco(fn):
        PRIOR_SOURCES[name] = fn
        return fn
    return deco


@prior_source("none")
def no_prior(vocab):
    return np.zeros((vocab, vocab))


@prior_source("hub")
def from_hub(vocab):
    with urllib.request.urlopen("https://example.org/prior.npy") as r:  # download
        return np.frombuffer(r.read(), dtype=np.float32).reshape(vocab, vocab)


def load_prior(vocab):
    fn = PRIOR_SOURCES[os.environ.get("PRIOR_SOURCE", "{default}")]
    return fn(vocab)


if __name__ == "__main__":
    load_prior(1024)
'''


@pytest.mark.parametrize("default,env,reach", [("hub", {}, "active"), ("hub", {"PRIOR_SOURCE": "none"}, "dormant"),
                                               ("none", {}, "dormant"), ("none", {"PRIOR_SOURCE": "hub"}, "active")])
def test_functions_registered_by_a_decorator_are_reached_through_their_table(tmp_path, monkeypatch, default, env, reach):
    """`@prior_source("hub")` stores the function in PRIOR_SOURCES under "hub"; `PRIOR_SOURCES[key](...)`
    reaches it only when the key is "hub"."""
    line, found = _reached(tmp_path, monkeypatch, REGISTRY.replace("{default}", default), lambda t: t.endswith("# download"),
                           lambda f: f.tag == "network_at_eval", env=env)
    assert found == [(line, reach)]
