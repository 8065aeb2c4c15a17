"""Data handed from one file of a submission to a function defined in another."""

from __future__ import annotations

from auditors import audit_path

ENTRY = '''
import numpy as np
import torch
from evaluate import adapt_and_score

def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    train = torch.from_numpy(np.fromfile("data/fineweb_train_000000.bin", dtype=np.uint16).astype(np.int64))
    adapt_and_score(model, train[:4097], steps=1)
    return adapt_and_score(model, val)

if __name__ == "__main__":
    main(None)
'''

HELPER = '''
import torch
import torch.nn.functional as F

def adapt_and_score(model, tokens, steps=3):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(steps):
        F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:]).backward()
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(tokens[None, :-1])[0], tokens[1:]).item()
'''


def test_a_helper_module_is_judged_on_the_validation_tokens_the_entry_hands_it(tmp_path, monkeypatch):
    """evaluate.py alone trains on whatever it is given; train_gpt.py gives it val: the
    backward pass in evaluate.py is train-then-score on validation tokens. Handed only
    training tokens, it is clean."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(ENTRY)
    (sub / "evaluate.py").write_text(HELPER)
    found = [(f.path, f.rule, f.reach) for f in audit_path(sub).findings if f.severity == "error"]
    assert found == [("evaluate.py", "ttt-before-score", "active")]
    assert not [f for f in audit_path(sub / "evaluate.py").findings if f.severity == "error"]
    (sub / "train_gpt.py").write_text(ENTRY.replace("return adapt_and_score(model, val)", "return val.numel()"))
    assert not [f for f in audit_path(sub).findings if f.severity == "error"]
