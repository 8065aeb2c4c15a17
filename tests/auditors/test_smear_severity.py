"""Severity of a previous-token mix without a BOS mask: an error only where the validation
stream is split into documents that are then scored (RULES.md §8), also by a helper whose
result, cut further, a caller hands to the scoring function or to a model with the targets
(`model(x, y)`); a byte-count audit that splits
documents and runs no model leaves the stream scored in order (a warning), and so does a
method called for its effect that restarts per-document counts at each BOS. Targets compared
with a negative ignore index (`y != -100`) mark padding, not document starts."""

from __future__ import annotations

import pytest

from auditors import audit_path

SMEAR = '''
import numpy as np
import torch
import torch.nn.functional as F


class Smear(torch.nn.Module):
    def forward(self, x):
        return x + 0.5 * F.pad(x[:, :-1], (0, 0, 1, 0))  # mix


def stream_eval(model, val):
    return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


def byte_audit(val, table, decode):
    v = val.tolist()
    starts, bad = [i for i, t in enumerate(v) if t == 1], 0
    for a, b in zip(starts, starts[1:]):
        bad += int(int(table[val[a + 1:b]].sum().item()) != len(decode(v[a + 1:b])))
    return bad


def doc_eval(model, val):
    starts = (val == 1).nonzero().flatten().tolist() + [len(val)]
    return sum(F.cross_entropy(model(val[None, a:b - 1])[0], val[a + 1:b]).item() for a, b in zip(starts, starts[1:]))


def find_docs(val):
    return (val == 1).nonzero().flatten().tolist() + [len(val)]


def score_docs(model, val, starts):
    return sum(F.cross_entropy(model(val[None, a:b - 1])[0], val[a + 1:b]).item() for a, b in zip(starts, starts[1:]))


def split_eval(model, val):
    starts = find_docs(val)
    mine = starts[: len(starts) // 2]
    return score_docs(model, val, mine)


def doc_starts(val):
    return (val == 1).nonzero().flatten().tolist() + [len(val)]


def model_loss_eval(model, val):
    starts = doc_starts(val)
    total = 0.0
    for a, b in zip(starts, starts[1:]):
        x, y = val[a:b - 1], val[a + 1:b]
        total += float(model(x[None], y[None]))
    return total


class DocCounts:
    def __init__(self, vocab=1024):
        self.counts, self.seen = torch.zeros(vocab), 0

    def advance(self, val, end):
        seg = val[self.seen:end]
        starts = (seg == 1).nonzero().flatten()
        if starts.numel():
            self.counts.zero_()
            seg = seg[int(starts[-1]):]
        self.counts += torch.bincount(seg, minlength=self.counts.numel()).float()
        self.seen = end


def stream_eval_doc_prior(model, val, seq=1024):
    prior, nll = DocCounts(), 0.0
    for s in range(0, len(val) - 1, seq):
        prior.advance(val, s + 1)
        logp = torch.log_softmax(model(val[None, s:s + seq])[0], -1)
        p = 0.9 * logp.exp() + 0.1 * (prior.counts + 1) / (prior.counts.sum() + 1024)
        nll -= p.log().gather(1, val[s + 1:s + seq + 1, None]).sum().item()
    return nll


def padded_eval(model, val, seq=1024):
    total = 0.0
    for s in range(0, len(val) - 1, seq):
        y = torch.full((seq,), -100, dtype=torch.long)
        part = val[s + 1:s + seq + 1]
        y[:part.numel()] = part
        nll = F.cross_entropy(model(val[None, s:s + seq])[0], y, ignore_index=-100, reduction="none")
        keep = y != -100
        total += nll[keep].sum().item()
    return total


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(byte_audit(val, torch.ones(1024), bytes))
    return {evaluation}(model, val)


if __name__ == "__main__":
    main(None)
'''


@pytest.mark.parametrize("evaluation,severity", [("stream_eval", "warning"), ("doc_eval", "error"), ("split_eval", "error"),
                                                 ("model_loss_eval", "error"), ("stream_eval_doc_prior", "warning"),
                                                 ("padded_eval", "warning")])
def test_documents_split_only_for_a_byte_count_leave_the_mix_a_warning(tmp_path, monkeypatch, evaluation, severity):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    text = SMEAR.replace("{evaluation}", evaluation)
    p.write_text(text)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# mix"))
    found = [(f.line, f.severity) for f in audit_path(p).findings if f.rule == "smear-without-bos-mask"]
    assert found == [(line, severity)]
