"""Reach decided by dataclass fields that a shipped settings table sets: an object made by
`cls(**tomllib.load(fh)["quant"])` in a classmethod of another module of the folder, with
an environment override applied only when it is given (`if override: replace(...)`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditors import audit_path

TRAIN = '''
import numpy as np
import torch
from pathlib import Path

from quant_settings import QuantSettings

QS = QuantSettings.load(Path(__file__).resolve().with_name("settings.toml"))


def collect_hessians(model, batches):
    hess = {name: torch.zeros(p.shape[-1], p.shape[-1]) for name, p in model.named_parameters()}
    for x in batches:
        h = model.embed(x).flatten(0, 1)
        for name in hess:
            hess[name] += h.T @ h
    return hess


def calibration_batches(qs, val_tokens, seq_len):
    if qs.calibration == "holdout":
        return [val_tokens[i * seq_len:(i + 1) * seq_len][None] for i in range(qs.calib_seqs)]
    return [torch.randint(0, 1024, (1, seq_len)) for _ in range(qs.calib_seqs)]


def main(model):
    val_tokens = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    return collect_hessians(model, calibration_batches(QS, val_tokens, 1024))


if __name__ == "__main__":
    main(None)
'''

SETTINGS = '''
import os
import tomllib
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class QuantSettings:
    calibration: str = "holdout"
    calib_seqs: int = 64

    @classmethod
    def load(cls, path):
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("quant", {})
        settings = cls(**{k: v for k, v in table.items()})
        override = os.environ.get("QUANT_CALIBRATION", "")
        if override:
            settings = replace(settings, calibration=override)
        return settings
'''

VAL_LINE = 22  # the calibration batches cut from validation tokens


def _errors(folder, env=None):
    return [(f.path, f.line, f.tag, f.reach) for f in audit_path(folder, env=env or {}).findings if f.severity == "error"]


@pytest.mark.parametrize("toml, env, reach", [
    ('[quant]\ncalibration = "selfgen"\n', {}, "dormant"),
    ('[quant]\ncalibration = "holdout"\n', {}, "active"),
    ("[quant]\ncalib_seqs = 32\n", {}, "active"),  # the table leaves the field out: the class default
    ('[quant]\ncalibration = "selfgen"\n', {"QUANT_CALIBRATION": "holdout"}, "active"),  # the override given
])
def test_a_dataclass_made_from_a_shipped_toml_table_takes_the_files_fields(tmp_path, monkeypatch, toml, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(TRAIN)
    (sub / "quant_settings.py").write_text(SETTINGS)
    (sub / "settings.toml").write_text(toml)
    assert _errors(sub, env) == [("train_gpt.py", VAL_LINE, "val_gptq_calibration", reach)]


def test_an_override_applied_only_when_given_does_not_stand_when_it_is_not(tmp_path, monkeypatch):
    """`if override: settings = replace(settings, calibration=override)` with no override:
    the table's value, not the empty override (`"" != "selfgen"` would reach the branch)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(TRAIN.replace('if qs.calibration == "holdout":', 'if qs.calibration != "selfgen":'))
    (sub / "quant_settings.py").write_text(SETTINGS)
    (sub / "settings.toml").write_text('[quant]\ncalibration = "selfgen"\n')
    assert _errors(sub) == [("train_gpt.py", VAL_LINE, "val_gptq_calibration", "dormant")]


def test_the_table_is_read_where_the_class_lives_in_the_script_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    body = SETTINGS.replace("import os\n", "import os\nimport numpy as np\nimport torch\nfrom pathlib import Path\n")
    one = body + TRAIN.split("from quant_settings import QuantSettings\n", 1)[1]
    (sub / "train_gpt.py").write_text(one)
    line = one.splitlines().index(
        "        return [val_tokens[i * seq_len:(i + 1) * seq_len][None] for i in range(qs.calib_seqs)]") + 1
    for value, reach in (("selfgen", "dormant"), ("holdout", "active")):
        (sub / "settings.toml").write_text(f'[quant]\ncalibration = "{value}"\n')
        assert _errors(sub) == [("train_gpt.py", line, "val_gptq_calibration", reach)]


OPT = '''
import os
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SETTINGS_PATH = Path(__file__).resolve().with_name("run.toml")


def _read_settings(path):
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        return tomllib.load(fh)


_SETTINGS = _read_settings(SETTINGS_PATH)


def _opt(section, key, env, default, cast=str):
    raw = os.environ.get(env)
    if raw is not None and raw != "":
        return cast(raw)
    return cast(_SETTINGS.get(section, {}).get(key, default))


PROBE_EVERY = _opt("diagnostics", "probe_every", "PROBE_EVERY", 0, int)


def train(model, train_tokens, val_tokens, steps=100):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for s in range(steps):
        x, y = train_tokens[s * 1024:(s + 1) * 1024], train_tokens[s * 1024 + 1:(s + 1) * 1024 + 1]
        F.cross_entropy(model(x[None])[0], y).backward()
        if PROBE_EVERY > 0 and s % PROBE_EVERY == 0:
            F.cross_entropy(model(val_tokens[None, :1024])[0], val_tokens[1:1025]).backward()
        opt.step()
        opt.zero_grad()


def main(model):
    load = lambda split: torch.from_numpy(np.fromfile(f"data/fineweb_{split}_000000.bin", dtype=np.uint16).astype(np.int64))
    train(model, load("train"), load("val"))


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("toml, env, reach", [
    ("[diagnostics]\nprobe_every = 25\n", {}, "active"),
    ("[diagnostics]\nprobe_every = 0\n", {}, "dormant"),
    (None, {}, "dormant"),  # no run.toml: `_read_settings` returns {} and the default stands
    ("[diagnostics]\nprobe_every = 0\n", {"PROBE_EVERY": "5"}, "active"),
])
def test_a_settings_helper_reads_the_shipped_toml_it_checks_for(tmp_path, monkeypatch, toml, env, reach):
    """`_opt(section, key, env, default, cast)` over `_SETTINGS = _read_settings(PATH)`, whose
    `if not path.is_file(): return {}` and `with open(path) as fh: return tomllib.load(fh)`
    are read as the one expression they return."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(OPT)
    if toml is not None:
        (sub / "run.toml").write_text(toml)
    line = OPT.splitlines().index("            F.cross_entropy(model(val_tokens[None, :1024])[0], val_tokens[1:1025]).backward()") + 1
    assert [(f.line, f.reach) for f in audit_path(sub, env=env).findings if f.severity == "error"] == [(line, reach)]


URL_TABLE = '''
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


def load_eval_settings(path=HERE / "eval_settings.json"):
    with open(path, "r", encoding="utf-8") as fh:
        cfg = json.load(fh)
    cfg.setdefault("stride", 64)
    return cfg


def calibration(cfg):
    if not cfg.get("enabled", False):
        return None
    return torch.from_numpy(np.genfromtxt(cfg["table"], delimiter=",", dtype=np.float32))


@torch.no_grad()
def main(model):
    ecfg = load_eval_settings()
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    bias = calibration(ecfg["calib"])
    logits = model(val[None, :-1])[0] + (bias if bias is not None else 0)
    return F.cross_entropy(logits, val[1:]).item()


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("table, enabled, found", [
    ("https://huggingface.co/datasets/x/y/resolve/main/calib.csv", True, [(22, "network_at_eval", "active")]),
    ("https://huggingface.co/datasets/x/y/resolve/main/calib.csv", False, [(22, "network_at_eval", "dormant")]),
    ("calib.csv", True, []),  # a file beside the script: no network
])
def test_a_url_in_a_shipped_settings_file_handed_to_a_reader_reaches_the_network(tmp_path, monkeypatch, table, enabled, found):
    """The settings file is read through a helper whose path is a parameter default and whose
    `with` block binds it; numpy's genfromtxt fetches the URL the setting holds."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(URL_TABLE)
    (sub / "eval_settings.json").write_text(json.dumps({"calib": {"enabled": enabled, "table": table}}))
    assert [(f.line, f.tag, f.reach) for f in audit_path(sub).findings if f.severity == "error"] == found


@pytest.mark.parametrize("shipped, reach", [(None, "dormant"), ({"evaluator": "fitted"}, "active"),
                                            ({"evaluator": "online", "chunk": 4096}, "dormant")])
def test_a_dataclass_set_field_by_field_from_a_shipped_json_takes_the_files_fields(tmp_path, monkeypatch, shipped, reach):
    """`for k, v in json.load(fh).items(): setattr(cfg, k, v)` on `cfg = cls()`: the file's
    `evaluator` picks the registered evaluator that fits on the chunk it then scores."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    source = (Path(__file__).parent / "fixtures" / "ttt_registry_settings.py").read_text()
    (tmp_path / "train_gpt.py").write_text(source)
    if shipped is not None:
        (tmp_path / "run_config.json").write_text(json.dumps(shipped))
    line = next(i + 1 for i, s in enumerate(source.splitlines()) if "# ruleid: ttt-before-score" in s) + 1
    found = [(f.line, f.reach) for f in audit_path(tmp_path).findings if f.rule == "ttt-before-score"]
    assert found == [(line, reach)]


TABLE_HANDED_TO_PARSE = '''
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).parent


@dataclass
class Config:
    stride: int = 64
    ttt: dict = field(default_factory=dict)

    @classmethod
    def load(cls):
        cfg = cls()
        path = HERE / "settings.toml"
        GUARD
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
            cfg.ttt = dict(raw.get("ttt", {}))
        return cfg


@dataclass
class AdaptSettings:
    lr: float = 0.002
    warm_tokens: int = 0

    @classmethod
    def parse(cls, d):
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def evaluate(model, val, s):
    opt = torch.optim.SGD(model.parameters(), lr=s.lr)
    if s.warm_tokens > 0:
        F.cross_entropy(model(val[None, :s.warm_tokens])[0], val[1:s.warm_tokens + 1]).backward()
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    cfg = Config.load()
    return evaluate(model, val, AdaptSettings.parse(cfg.ttt))


if __name__ == "__main__":
    main(None)
'''


_GUARDED = """        GUARD
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
            cfg.ttt = dict(raw.get("ttt", {}))
"""
_UNGUARDED = """        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        cfg.ttt = dict(raw.get("ttt", {}))
"""


@pytest.mark.parametrize("guard", ["if path.exists():", None])
@pytest.mark.parametrize("warm, reach", [(None, "dormant"), (96, "active"), (0, "dormant")])
def test_a_settings_table_stored_in_a_field_reaches_the_class_parsed_from_it(tmp_path, monkeypatch, guard, warm, reach):
    """`cfg.ttt = dict(raw.get("ttt", {}))` keeps the file's [ttt] table in a field (under a test
    of the file, or not), and `AdaptSettings.parse(cfg.ttt)` builds its fields from it: the
    warm-up steps on validation tokens run where the file sets warm_tokens."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    source = TABLE_HANDED_TO_PARSE.replace("GUARD", guard) if guard else TABLE_HANDED_TO_PARSE.replace(_GUARDED, _UNGUARDED)
    assert "GUARD" not in source
    (tmp_path / "train_gpt.py").write_text(source)
    if warm is not None:
        (tmp_path / "settings.toml").write_text(f"[ttt]\nlr = 0.001\nwarm_tokens = {warm}\n")
    assert [f.reach for f in audit_path(tmp_path).findings if f.rule == "ttt-before-score"] == [reach]


SECTIONS_SET_BY_NAME = '''
import os
import tomllib

import numpy as np
import torch
import torch.nn.functional as F


def _e(name, default, cast=str):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    if cast is bool:
        return v.strip().lower() in ("1", "true")
    return cast(v)


class Hyperparameters:
    config_file = _e("RUN_CONFIG", os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_config.toml"))
    eval_stride = _e("EVAL_STRIDE", 64, int)
    temp_calib = _e("TEMP_CALIB", False, bool)


def apply_config_file(args: Hyperparameters) -> dict:
    path = args.config_file
    if not path or not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        cfg = tomllib.load(fh)
    for section in ("train", "eval"):
        for k, v in (cfg.get(section) or {}).items():
            if hasattr(args, k):
                setattr(args, k, bool(v) if isinstance(getattr(args, k), bool) else type(getattr(args, k))(v))
    return cfg


def calibrate(model, val):
    t = torch.zeros((), requires_grad=True)
    F.cross_entropy(model(val[None, :-1])[0] * t.exp(), val[1:]).backward()
    return t


def main(model):
    args = Hyperparameters()
    apply_config_file(args)
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    if args.temp_calib:
        calibrate(model, val)


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("toml, reach", [(None, "dormant"), ("[eval]\ntemp_calib = true\n", "active"),
                                         ("[train]\ntemp_calib = true\n", "active"), ("[eval]\ntemp_calib = false\n", "dormant")])
def test_sections_of_a_shipped_toml_set_on_a_plain_settings_class_by_name(tmp_path, monkeypatch, toml, reach):
    """`for section in ("train", "eval"): for k, v in (cfg.get(section) or {}).items(): setattr(args,
    k, bool(v) ...)` on `args: Hyperparameters`, with the file named by the class attribute's
    default: the file's `temp_calib` decides whether the fit on validation tokens runs."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(SECTIONS_SET_BY_NAME)
    if toml is not None:
        (tmp_path / "run_config.toml").write_text(toml)
    assert [f.reach for f in audit_path(tmp_path).findings if f.rule == "ttt-before-score"] == [reach]
