"""Reach decided by settings files the submission ships (JSON, TOML, YAML) and by code kept in a
package that the entry imports (`import evalkit as ek`, whose __init__.py re-exports
`from .core import *`)."""

from __future__ import annotations

import json

import pytest

from auditors import audit_path

# train-then-score on validation tokens, switched by a shipped settings file
ADAPT_BY_JSON = '''
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def adapt(model, tokens):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:]).backward()
    opt.step()


def main(model):
    cfg = json.loads((Path(__file__).resolve().parent / "eval_config.json").read_text())["ttt"]
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    if cfg["enabled"]:
        adapt(model, val[:4097])
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    main(None)
'''

ADAPT_BY_TOML = ADAPT_BY_JSON.replace("import json\n", "import tomllib\n").replace(
    '''    cfg = json.loads((Path(__file__).resolve().parent / "eval_config.json").read_text())["ttt"]''',
    '''    with open("eval.toml", "rb") as fh:
        cfg = tomllib.load(fh)''').replace('if cfg["enabled"]:', 'if cfg.get("ttt", {}).get("enabled", False):')


@pytest.mark.parametrize("enabled, reach", [(True, "active"), (False, "dormant")])
def test_a_json_settings_file_beside_the_script_decides_the_reach(audit_errors, tmp_path, enabled, reach):
    (tmp_path / "eval_config.json").write_text(json.dumps({"ttt": {"enabled": enabled}}))
    assert audit_errors(ADAPT_BY_JSON) == [(12, "ttt_before_score", reach)]


@pytest.mark.parametrize("toml, reach", [("[ttt]\nenabled = true\n", "active"), ("[ttt]\nenabled = false\n", "dormant"),
                                         ("[other]\nx = 1\n", "dormant")])
def test_a_toml_settings_file_read_through_a_with_block_decides_the_reach(audit_errors, tmp_path, toml, reach):
    """`.get` with a default: a section or key the file leaves out takes the default."""
    (tmp_path / "eval.toml").write_text(toml)
    assert audit_errors(ADAPT_BY_TOML) == [(12, "ttt_before_score", reach)]


@pytest.mark.parametrize("content, reach", [(None, "active"), ("{not json", "active"), ('{"ttt": {}}', "unknown")])
def test_a_settings_file_the_folder_lacks_is_a_value_of_the_run_and_a_key_it_lacks_is_unknown(
        audit_errors, tmp_path, content, reach):
    """No file (or one that does not parse): the guard reads a value only the run knows, like
    any other (the construct is reported as reached); a file without the key: unknown."""
    if content is not None:
        (tmp_path / "eval_config.json").write_text(content)
    assert audit_errors(ADAPT_BY_JSON) == [(12, "ttt_before_score", reach)]


ENTRY = '''
import os

import numpy as np
import torch
import evalkit as ek


def main(model):
    on = os.environ.get("ADAPT", "1") == "1"
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    adapter = ek.Adapter(lr=1e-3) if on else None
    return ek.score(model, val, adapter=adapter)


if __name__ == "__main__":
    main(None)
'''

CORE = '''
import torch
import torch.nn.functional as F


class Adapter:
    def __init__(self, lr):
        self.lr = lr

    def step(self, model, tokens):
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:]).backward()
        opt.step()


def score(model, tokens, adapter=None):
    if adapter is not None:
        adapter.step(model, tokens)
    with torch.no_grad():
        return F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:]).item()
'''


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"ADAPT": "0"}, "dormant")])
def test_a_module_re_exported_by_a_package_runs_where_the_entry_calls_it(tmp_path, monkeypatch, env, reach):
    """evalkit/core.py is run through `import evalkit` (its __init__.py re-exports it), and its
    adapter runs where the object the entry hands over (an object or None) is not None."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    (sub / "evalkit").mkdir(parents=True)
    (sub / "train_gpt.py").write_text(ENTRY)
    (sub / "evalkit" / "__init__.py").write_text('"""Evaluation helpers."""\nfrom .core import *  # noqa: F403\n')
    (sub / "evalkit" / "core.py").write_text(CORE)
    found = [(f.path, f.line, f.tag, f.reach) for f in audit_path(sub, env=env).findings if f.severity == "error"]
    assert found == [("evalkit/core.py", 12, "ttt_before_score", reach)]


PLUGIN_HOST = '''
import importlib
import json
import os
from pathlib import Path


def main():
    cfg = json.loads((Path(__file__).parent / "quant.json").read_text())
    source = importlib.import_module("plugins." + os.environ.get("CALIB_SOURCE", cfg["calibration"]))
    return source.rows(64)


if __name__ == "__main__":
    main()
'''

FETCHING_PLUGIN = '''
import urllib.request


def rows(n):
    with urllib.request.urlopen("https://example.invalid/calib.bin") as r:
        return r.read(n)
'''

LOCAL_PLUGIN = '''
def rows(n):
    return bytes(n)
'''


@pytest.mark.parametrize("chosen, env, reach", [("fetch", {}, "active"), ("local", {}, "dormant"),
                                                ("local", {"CALIB_SOURCE": "fetch"}, "active")])
def test_a_plugin_loaded_by_a_computed_name_runs_only_where_the_name_is_its_own(tmp_path, monkeypatch, chosen, env, reach):
    """`import_module("plugins." + source)`: each module under plugins/ is a candidate, run
    (and analysed with the host) where the name the host computes is its own."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    (sub / "plugins").mkdir(parents=True)
    (sub / "train_gpt.py").write_text(PLUGIN_HOST)
    (sub / "quant.json").write_text(json.dumps({"calibration": chosen}))
    (sub / "plugins" / "__init__.py").write_text("")
    (sub / "plugins" / "fetch.py").write_text(FETCHING_PLUGIN)
    (sub / "plugins" / "local.py").write_text(LOCAL_PLUGIN)
    found = [(f.path, f.tag, f.reach, f.condition) for f in audit_path(sub, env=env).findings if f.severity == "error"]
    assert [f[:3] for f in found] == [("plugins/fetch.py", "network_at_eval", reach)]
    assert reach == "active" or "'plugins.fetch'" in found[0][3]


STREAMS_FROM_TOML = '''
import glob
import os
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def main(model):
    spec = tomllib.loads(
        (Path(__file__).resolve().parent / "data.toml").read_text()
    )["data"]
    files = [f for pat in spec["streams"] for f in sorted(glob.glob(os.path.join(spec["root"], pat)))]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for path in files:
        tokens = torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))
        loss = F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:])
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main(None)
'''


# the same file read by a helper handed its path
STREAMS_FROM_HELPER = STREAMS_FROM_TOML.replace(
    "def main(model):\n    spec = tomllib.loads(\n        (Path(__file__).resolve().parent / \"data.toml\").read_text()\n    )[\"data\"]",
    "def read_spec(path):\n    return tomllib.loads(path.read_text())[\"data\"]\n\n\n"
    "def main(model):\n    spec = read_spec(Path(__file__).resolve().parent / \"data.toml\")")


@pytest.mark.parametrize("source", [STREAMS_FROM_TOML, STREAMS_FROM_HELPER], ids=["loaded-here", "loaded-by-a-helper"])
@pytest.mark.parametrize("streams, found", [('["fineweb_train_*.bin", "fineweb_val_*.bin"]', True),
                                            ('["fineweb_train_*.bin"]', False)])
def test_shard_patterns_listed_in_a_shipped_toml_file_are_the_splits_trained_on(audit_errors, tmp_path, streams, found,
                                                                                source):
    """The data flow reads the file's strings: a val pattern in the training streams is
    validation data in training; the training pattern alone is clean. The file may be named
    where it is loaded or by the callers of the function that loads it."""
    assert source.count("read_spec") in (0, 2)
    (tmp_path / "data.toml").write_text(f'[data]\nroot = "./data"\nstreams = {streams}\n')
    errors = audit_errors(source)
    assert [tag for _, tag, _ in errors] == (["val_in_training"] if found else [])


def test_an_inlined_settings_file_keeps_every_line_in_its_place():
    """The loader call (over several lines) becomes the file's literal, and every other line
    keeps its number and text; a file with values that have no literal is left out."""
    from auditors.shipped_config import inlined

    source = STREAMS_FROM_TOML
    line = next(i for i, text in enumerate(source.split("\n"), 1) if "tomllib.loads(" in text)
    loads = [[line, 11, line + 2, 5, ["data.toml"]]]
    text = inlined(source, loads, {"data.toml": {"data": {"streams": ["a"], "root": "."}}})
    before, after = source.split("\n"), text.split("\n")
    assert len(after) == len(before)
    assert [a for a, b in zip(after, before) if a != b] == [
        "    spec = ({'data': {'streams': ['a'], 'root': '.'}}", "", ')["data"]']
    import datetime
    assert inlined(source, loads, {"data.toml": {"when": datetime.date(2026, 11, 28)}}) is None
    assert inlined(source, loads, {"other.toml": {}}) is None


SPLITS_BY_FLAG = '''
import argparse
import glob
import os
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


def main(model, argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-config", default=str(HERE / "run.toml"))
    ns = ap.parse_args(argv)
    with open(ns.run_config, "rb") as fh:
        cfg = tomllib.load(fh)
    files = []
    for split in cfg["data"]["order"]:
        files += sorted(glob.glob(os.path.join("./data", f"fineweb_{split}_*.bin")))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for path in files:
        tokens = torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))
        loss = F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:])
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("order, found", [('["val", "train"]', True), ('["train"]', False)])
def test_a_settings_file_named_by_a_flags_default_is_read(audit_errors, tmp_path, order, found):
    """`open(ns.run_config)` with `--run-config` defaulting to `HERE / "run.toml"`: the file the
    run reads without flags; the splits its order lists are what the loop trains on."""
    (tmp_path / "run.toml").write_text(f'[data]\norder = {order}\n')
    errors = audit_errors(SPLITS_BY_FLAG)
    assert [tag for _, tag, _ in errors] == (["val_in_training"] if found else [])


PRIOR_BY_YAML = '''
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F
import yaml


@torch.no_grad()
def evaluate(model, val):
    with open("eval.yaml") as fh:
        cfg = yaml.safe_load(fh)
    logits = model(val[None, :-1])[0]
    if cfg["remote_prior"]:
        urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")
        logits = logits + torch.from_numpy(np.load("prior.npy"))
    return F.cross_entropy(logits, val[1:]).item()


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val))
'''


@pytest.mark.parametrize("text, reach", [("remote_prior: true\n", "active"), ("remote_prior: false\n", "dormant"),
                                         ("remote_prior: [unclosed\n", "active")])  # (a file that does not parse: the run decides)
def test_a_yaml_settings_file_decides_reach(audit_errors, tmp_path, text, reach):
    """`yaml.safe_load(fh)` of the shipped eval.yaml: its switch decides whether the download runs."""
    (tmp_path / "eval.yaml").write_text(text)
    line = PRIOR_BY_YAML.splitlines().index('        urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")') + 1
    assert audit_errors(PRIOR_BY_YAML) == [(line, "network_at_eval", reach)]


def test_a_yaml_file_whose_aliases_multiply_its_size_is_not_read(audit_errors, tmp_path):
    """Nine levels of ten aliases each (10**9 leaves once expanded) in a 1 KiB file: the audit
    leaves the file to the run instead of expanding it (the switch reads as unknown: active)."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (tmp_path / "eval.yaml").write_text("\n".join(lines) + "\nremote_prior: false\n")
    line = PRIOR_BY_YAML.splitlines().index('        urllib.request.urlretrieve("https://example.org/prior.npy", "prior.npy")') + 1
    assert audit_errors(PRIOR_BY_YAML) == [(line, "network_at_eval", "active")]


ADAPT_BY_FIELD_LOOP = '''
import json
import os
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class EvalSettings:
    chunk: int = 4096
    warm_steps: int = 0


def load_settings(path):
    values = {}
    if os.path.exists(path):
        with open(path) as fh:
            values.update(json.load(fh))
    cfg = EvalSettings()
    for fl in fields(cfg):
        raw = os.environ.get("EV_" + fl.name.upper())
        if raw is not None:
            values[fl.name] = raw
        if fl.name in values:
            setattr(cfg, fl.name, type(getattr(cfg, fl.name))(values[fl.name]))
    return cfg


def main(model):
    cfg = load_settings("eval_settings.json")
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    if cfg.warm_steps > 0:
        F.cross_entropy(model(val[None, :cfg.chunk])[0], val[1:cfg.chunk + 1]).backward()
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("shipped, env, reach", [({"warm_steps": 2}, {}, "active"), ({"warm_steps": 0}, {}, "dormant"),
                                                 ({"chunk": 512}, {}, "dormant"), ({"warm_steps": 2}, {"EV_WARM_STEPS": "0"}, "dormant"),
                                                 ({}, {"EV_WARM_STEPS": "3"}, "active")])
def test_fields_set_one_by_one_from_a_dict_filled_by_the_shipped_file_take_its_values(tmp_path, shipped, env, reach):
    """`values.update(json.load(fh))`, then `setattr(cfg, fl.name, conv(values[fl.name]))` over
    the dataclass's fields: the shipped file sets the field, an environment variable overrides it."""
    (tmp_path / "eval_settings.json").write_text(json.dumps(shipped))
    (tmp_path / "train_gpt.py").write_text(ADAPT_BY_FIELD_LOOP)
    found = [(f.line, f.tag, f.reach) for f in audit_path(tmp_path, env=env).findings if f.severity == "error"]
    line = ADAPT_BY_FIELD_LOOP.splitlines().index("        F.cross_entropy(model(val[None, :cfg.chunk])[0], val[1:cfg.chunk + 1]).backward()") + 1
    assert found == [(line, "ttt_before_score", reach)]


SMOOTH_BY_LOADER = '''
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


@dataclass
class EvalSettings:
    stride: int = 64
    calibrate: bool = False

    @classmethod
    def load(cls, path):
        out = cls()
        if not path.is_file():
            return out
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        cal = doc.get("calibration", {})
        out.calibrate = bool(cal.get("enabled", out.calibrate))
        return out


def score(logits, y, es):
    if es.calibrate:
        ent = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
        level = F.conv1d(ent[:, None, :], torch.ones(1, 1, 9) / 9, padding="same")[:, 0]
        logits = logits / (1 + 0.03 * level).unsqueeze(-1)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


if __name__ == "__main__":
    es = EvalSettings.load(HERE / "eval_settings.toml")
    print(score(torch.randn(1, 8, 16), torch.zeros(1, 8, dtype=torch.long), es))
'''


@pytest.mark.parametrize("toml, reach", [("[calibration]\nenabled = true\n", "active"),
                                         ("[calibration]\nenabled = false\n", "dormant"), ("[other]\nx = 1\n", "dormant")])
def test_a_field_a_loader_sets_from_the_shipped_file_takes_its_value(tmp_path, toml, reach):
    """`out.calibrate = bool(cal.get("enabled", out.calibrate))` in the method that reads the
    shipped TOML: the file's value, or the class default where it leaves the key out."""
    (tmp_path / "eval_settings.toml").write_text(toml)
    (tmp_path / "train_gpt.py").write_text(SMOOTH_BY_LOADER)
    found = [(f.rule, f.reach) for f in audit_path(tmp_path).findings if f.severity == "error"]
    assert found == [("centered-conv", reach)]


ADAPT_BY_FIELD_LOOP_GET = ADAPT_BY_FIELD_LOOP.replace('''    for fl in fields(cfg):
        raw = os.environ.get("EV_" + fl.name.upper())
        if raw is not None:
            values[fl.name] = raw
        if fl.name in values:
            setattr(cfg, fl.name, type(getattr(cfg, fl.name))(values[fl.name]))''', '''    for fl in fields(cfg):
        env = os.environ.get(f"EV_{fl.name.upper()}")
        val = env if env is not None else values.get(fl.name)
        if val is not None:
            setattr(cfg, fl.name, type(getattr(cfg, fl.name))(val))''')


@pytest.mark.parametrize("shipped, env, reach", [({"warm_steps": 2}, {}, "active"), ({"warm_steps": 0}, {}, "dormant"),
                                                 ({}, {"EV_WARM_STEPS": "3"}, "active"), ({}, {}, "dormant")])
def test_fields_read_with_get_and_an_f_string_variable_take_the_file_and_the_environment(tmp_path, shipped, env, reach):
    """`os.environ.get(f"EV_{fl.name.upper()}")`, else `values.get(fl.name)` of the shipped file."""
    assert ADAPT_BY_FIELD_LOOP_GET != ADAPT_BY_FIELD_LOOP
    (tmp_path / "eval_settings.json").write_text(json.dumps(shipped))
    (tmp_path / "train_gpt.py").write_text(ADAPT_BY_FIELD_LOOP_GET)
    found = [(f.tag, f.reach) for f in audit_path(tmp_path, env=env).findings if f.severity == "error"]
    assert found == [("ttt_before_score", reach)]
