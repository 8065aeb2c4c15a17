"""A reader that fetches whatever address it is handed (`fsspec.open(source)`) reaches the
network exactly where a settings file the folder ships sets that key to a remote address:
the value travels through a dataclass, a registry and another module, so the audit looks
the key up in the shipped files rather than following the value."""

from __future__ import annotations

import json

import pytest

from auditors import audit_path

PRIORS = '''
import io
from dataclasses import dataclass

import fsspec
import numpy as np
import torch

_KINDS = {}


@dataclass
class PriorSpec:
    kind: str
    source: str = ""
    weight: float = 0.1


def fetch(source, members):
    if source.startswith("blob://"):
        return members[source[len("blob://"):]]
    with fsspec.open(source, "rb") as fh:
        return fh.read()


def build(specs, members):
    out = []
    for raw in specs:
        spec = PriorSpec(**raw)
        table = np.load(io.BytesIO(fetch(spec.source, members)))
        out.append((spec.weight, torch.log_softmax(torch.from_numpy(table), -1)))
    return out
'''

TRAIN = '''
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import priors

HERE = Path(__file__).resolve().parent


@torch.no_grad()
def evaluate(model, val, members):
    cfg = json.loads((HERE / "run_config.json").read_text())
    stack = priors.build(cfg["eval"]["priors"], members)
    logits = model(val[None, :-1])[0]
    for w, logp in stack:
        logits = logits + w * logp[val[:-1]]
    return F.cross_entropy(logits, val[1:]).item()


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val, {}))
'''

FETCH_LINE = PRIORS.splitlines().index('    with fsspec.open(source, "rb") as fh:') + 1


@pytest.mark.parametrize("source, where, found", [
    ("simplecache::hf://datasets/x/assets/bigram.npy", "run_config.json", [FETCH_LINE]),  # a chained fsspec URL
    ("https://example.org/bigram.npy", "run_config.json", [FETCH_LINE]),
    ("blob://bigram", "run_config.json", []),  # a member of the counted artifact: no network
    ("bigram.npy", "run_config.json", []),  # a file beside the script
    ("https://example.org/bigram.npy", "submission.json", []),  # the record's metadata, not read as settings
])
def test_a_reader_handed_a_settings_key_fetches_only_where_the_shipped_file_sets_a_url(
        tmp_path, monkeypatch, source, where, found):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(TRAIN)
    (sub / "priors.py").write_text(PRIORS)
    settings = {"eval": {"priors": [{"kind": "bigram", "source": source, "weight": 0.1}]}}
    (sub / where).write_text(json.dumps(settings))
    if where != "run_config.json":
        (sub / "run_config.json").write_text(json.dumps({"eval": {"priors": []}}))
    hits = [f for f in audit_path(sub).findings if f.rule == "network-at-eval"]
    assert [(f.path, f.line, f.severity, f.reach) for f in hits] == [("priors.py", line, "error", "active") for line in found]
    assert all(source in f.message for f in hits)  # the finding names the value it fetches
