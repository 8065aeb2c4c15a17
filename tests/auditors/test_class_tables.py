"""Classes built from a dispatch table (`ADAPTERS[mode](model)` over `{"none": NoAdapt,
"tent": Tent}` or `{c.name: c for c in (NoAdapt, Tent)}`): a method called on the object
may be any entry's, and each entry is built only where the key selects it."""

from __future__ import annotations

import pytest

from auditors import audit_path

TABLE = '''
import os

import numpy as np
import torch
import torch.nn.functional as F


class NoAdapt:
    name = "none"

    def __init__(self, model):
        self.model = model

    def prepare(self, chunk):
        return None


class Tent:
    name = "tent"

    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def prepare(self, chunk):
        p = F.log_softmax(self.model(chunk[None])[0], -1)
        ent = -(p.exp() * p).sum(-1).mean()
        ent.backward()
        self.opt.step()
        self.opt.zero_grad()


ADAPTERS = {TABLE_BODY}


def evaluate(model, val, chunk=4096):
    adapter = ADAPTERS[os.environ.get("EVAL_ADAPT", "none")](model)
    nll = 0.0
    for lo in range(0, val.numel() - 1, chunk):
        adapter.prepare(val[lo:lo + chunk])
        with torch.no_grad():
            nll += F.cross_entropy(model(val[None, lo:lo + chunk])[0], val[lo + 1:lo + chunk + 1], reduction="sum").item()
    return nll


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(evaluate(torch.nn.Embedding(1024, 1024), val))
'''


@pytest.mark.parametrize("body", ['{"none": NoAdapt, "tent": Tent}', "{c.name: c for c in (NoAdapt, Tent)}"])
@pytest.mark.parametrize("env, reach", [({}, "dormant"), ({"EVAL_ADAPT": "tent"}, "active")])
def test_a_method_of_a_class_built_from_a_table_is_reached_where_its_key_is_chosen(tmp_path, body, env, reach):
    text = TABLE.replace("{TABLE_BODY}", body)
    (tmp_path / "train_gpt.py").write_text(text)
    line = text.splitlines().index("        ent.backward()") + 1
    found = [(f.line, f.tag, f.reach) for f in audit_path(tmp_path, env=env, use_cache=False).findings if f.severity == "error"]
    assert found == [(line, "ttt_before_score", reach)]
