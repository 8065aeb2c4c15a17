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


MAIN_WITH_EVALUATOR = '''
import numpy as np
import torch
import torch.nn.functional as F
from adapt import OnlineAdapter


class Evaluator:
    @torch.inference_mode()
    def log_probs(self, model, x):
        return F.log_softmax(model(x).float(), -1)

    def score_batch(self, model, tokens, lo, hi, tally):
        lp = self.log_probs(model, tokens[None, lo:hi])
        tally.append(-lp[0].gather(1, tokens[lo + 1:hi + 1, None]).sum().item())


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    return OnlineAdapter(Evaluator()).run(model, val)


if __name__ == "__main__":
    main(None)
'''

ADAPTER = '''
import torch
import torch.nn.functional as F


class OnlineAdapter:
    def __init__(self, ev, chunk=1024):
        self.ev, self.chunk = ev, chunk

    def online(self, model, tokens):
        opt, tally = torch.optim.SGD(model.parameters(), lr=1e-3), []
        for lo in range(0, tokens.numel() - 1, self.chunk):
            hi = min(lo + self.chunk, tokens.numel() - 1)
            self.ev.score_batch(model, tokens, lo, hi, tally)
            F.cross_entropy(model(tokens[None, lo:hi])[0], tokens[lo + 1:hi + 1]).backward()
            opt.step()
        return tally

    def run(self, model, tokens):
        first = self.online(model, tokens)
        again = []
        for lo in range(0, tokens.numel() - 1, self.chunk):
            self.ev.score_batch(model, tokens, lo, min(lo + self.chunk, tokens.numel() - 1), again)
        return sum(again)
'''


def test_a_class_of_a_helper_module_is_analysed_with_the_methods_the_entry_gives_it(tmp_path, monkeypatch):
    """adapt.py alone calls `self.ev.score_batch`, a method it does not define; analysed
    with train_gpt.py (which builds the adapter around its Evaluator), the online pass is
    score-first and the second loop rescoring every chunk with the adapted model is a
    second pass, reported in adapt.py at its own line numbers. The online pass alone is
    clean."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(MAIN_WITH_EVALUATOR)
    (sub / "adapt.py").write_text(ADAPTER)
    found = [f for f in audit_path(sub).findings if f.severity == "error"]
    assert [(f.path, f.rule, f.reach) for f in found] == [("adapt.py", "two-pass-rescore", "active")]
    rescore = ADAPTER.splitlines().index("            self.ev.score_batch(model, tokens, lo, min(lo + self.chunk, "
                                         "tokens.numel() - 1), again)") + 1
    trained = ADAPTER.splitlines().index("        first = self.online(model, tokens)") + 1
    assert found[0].line == rescore and f"line {trained})" in found[0].message
    assert not [f for f in audit_path(sub / "adapt.py").findings if f.severity == "error"]
    (sub / "adapt.py").write_text(ADAPTER.split("    def run(")[0] + "    def run(self, model, tokens):\n"
                                  "        return sum(self.online(model, tokens))\n")
    assert not [f for f in audit_path(sub).findings if f.severity == "error"]


FETCH = '''
import urllib.request

def fetch_tokens(name):
    urllib.request.urlretrieve("https://example.org/" + name, name)
    return name

if __name__ == "__main__":
    fetch_tokens("fineweb_val_retok.bin")
'''

SCORE_FETCHED = '''
import numpy as np
import torch
import torch.nn.functional as F
from fetch import fetch_tokens

@torch.no_grad()
def evaluate(model):
    val = torch.from_numpy(np.fromfile(fetch_tokens("fineweb_val_retok.bin"), dtype=np.uint16).astype(np.int64))
    return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()

if __name__ == "__main__":
    evaluate(None)
'''


def test_a_download_in_a_preparation_module_is_an_error_once_the_evaluation_imports_it(tmp_path, monkeypatch):
    """fetch.py alone is a script that neither trains nor scores: data preparation, whose
    download is a warning. Imported and called by the file that evaluates, it is an error
    there; without its main it is a helper module, judged an error on its own too."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "fetch.py").write_text(FETCH)
    alone = [(f.rule, f.severity) for f in audit_path(sub / "fetch.py").findings]
    assert alone == [("network-at-eval", "warning")]
    (sub / "train_gpt.py").write_text(SCORE_FETCHED)
    found = [(f.path, f.rule, f.severity, f.line) for f in audit_path(sub).findings if f.rule == "network-at-eval"]
    assert found == [("fetch.py", "network-at-eval", "error", 5)]
    (sub / "train_gpt.py").unlink()
    (sub / "fetch.py").write_text(FETCH.split("if __name__")[0])
    assert [(f.rule, f.severity) for f in audit_path(sub / "fetch.py").findings] == [("network-at-eval", "error")]


TILT_ENTRY = '''
import os

import numpy as np
import torch
import torch.nn.functional as F
from tilt import HintTilt

BETA = float(os.environ.get("TILT_BETA", "1.5"))


def with_tilt(tilt: HintTilt):
    def adjust(logits, x, y):
        logp = F.log_softmax(logits.float(), dim=-1)
        out = tilt(logp, x, y)
        tilt.observe(x, y)
        return out
    return adjust


@torch.no_grad()
def evaluate(model, val, adjust=None, seq=1024):
    total = 0.0
    for s in range(0, val.numel() - seq - 1, seq):
        x, y = val[s:s + seq], val[s + 1:s + seq + 1]
        logits = model(x)
        nll = F.cross_entropy(logits, y, reduction="none")
        if adjust is not None:
            nll = adjust(logits, x, y)
        total += nll.sum().item()
    return total


def main():
    model = torch.nn.Embedding(1024, 1024)
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    tilt = HintTilt(1024, BETA) if BETA > 0 else None
    print(evaluate(model, val, with_tilt(tilt) if tilt else None))


if __name__ == "__main__":
    main()
'''

TILT_HELPER = '''
import torch


class HintTilt:
    def __init__(self, vocab, beta):
        self.beta, self.follow = beta, torch.full((vocab,), -1, dtype=torch.long)

    def __call__(self, logp, prev, tgt):
        hint = self.follow[prev]
        lp = logp.gather(-1, tgt[:, None]).squeeze(-1)
        return -(lp + self.beta * (tgt == hint).to(logp.dtype))  # boost

    def observe(self, prev, tgt):
        self.follow[prev] = tgt
'''


def test_a_helper_class_called_through_an_annotated_closure_is_judged_with_the_importer(tmp_path, monkeypatch):
    """tilt.py alone never sees a target; train_gpt.py hands its __call__ the scored targets
    through a closure over an annotated parameter, and decides by its own setting whether
    the object is built at all."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(TILT_ENTRY)
    (tmp_path / "tilt.py").write_text(TILT_HELPER)
    line = next(i + 1 for i, t in enumerate(TILT_HELPER.splitlines()) if t.endswith("# boost"))

    def found(env):
        return [(f.path, f.line, f.reach) for f in audit_path(tmp_path, env=env).findings if f.rule == "unnormalized-blend"]
    assert found({}) == [("tilt.py", line, "active")]
    assert found({"TILT_BETA": "0"}) == [("tilt.py", line, "dormant")]


PRIOR_ENTRY = '''
import io
import lzma

import numpy as np
import torch
import torch.nn.functional as F
import eval_utils as eu

TRAIN_GLOB = "data/fineweb_train_*.bin"


@torch.no_grad()
def evaluate(model, val, adjust, seq=1024):
    total = 0.0
    for s in range(0, val.numel() - seq - 1, seq):
        x, y = val[s:s + seq], val[s + 1:s + seq + 1]
        total += F.cross_entropy(adjust(model(x)), y, reduction="sum").item()
    return total


def main():
    model = torch.nn.Embedding(1024, 1024)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    open("final_model.xz", "wb").write(lzma.compress(buf.getvalue()))
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    log_prior = eu.token_prior(TRAIN_GLOB, 1024)
    print(evaluate(model, val, eu.with_prior(log_prior, 0.05)))  # scored


if __name__ == "__main__":
    main()
'''

PRIOR_HELPER = '''
import glob

import numpy as np
import torch


def token_prior(pattern, vocab):
    counts = np.ones(vocab)
    for path in sorted(glob.glob(pattern))[:1]:
        counts += np.bincount(np.fromfile(path, dtype=np.uint16), minlength=vocab)[:vocab]
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def with_prior(log_prior, w):
    def adjust(logits):
        return torch.logaddexp(torch.log_softmax(logits, -1) + np.log(1 - w), log_prior + np.log(w))
    return adjust
'''


def test_a_prior_counted_by_a_sibling_module_after_the_export_reads_training_data_at_eval(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(PRIOR_ENTRY)
    (tmp_path / "eval_utils.py").write_text(PRIOR_HELPER)
    line = next(i + 1 for i, t in enumerate(PRIOR_ENTRY.splitlines()) if t.endswith("# scored"))
    found = [(f.path, f.line, f.reach) for f in audit_path(tmp_path).findings if f.tag == "train_data_at_eval"]
    assert found == [("train_gpt.py", line, "active")]
    # counted before the export, inside the training phase, the rule has nothing read at evaluation time
    before = PRIOR_ENTRY.replace("    log_prior = eu.token_prior(TRAIN_GLOB, 1024)\n", "").replace(
        "    buf = io.BytesIO()\n", "    log_prior = eu.token_prior(TRAIN_GLOB, 1024)\n    buf = io.BytesIO()\n")
    (tmp_path / "train_gpt.py").write_text(before)
    assert not [f for f in audit_path(tmp_path).findings if f.tag == "train_data_at_eval"]


CALIB_ENTRY = '''
import os

import torch
from quant_utils import calibration_rows

SOURCE = os.environ.get("CALIB_SOURCE", "self")


@torch.no_grad()
def hessians(model, rows):
    h = 0
    for r in rows:
        a = model(r)
        h = h + a.T @ a
    return h


def main():
    model = torch.nn.Embedding(1024, 64)
    rows = calibration_rows(SOURCE, train_glob="data/fineweb_train_*.bin", val_glob="data/fineweb_val_*.bin")
    return hessians(model, rows)  # calibrated


if __name__ == "__main__":
    main()
'''

CALIB_HELPER = '''
import glob

import numpy as np
import torch


def _rows(pattern, n=8, seq=512):
    arr = np.fromfile(sorted(glob.glob(pattern))[0], dtype=np.uint16)[:n * seq]
    return torch.from_numpy(arr.astype(np.int64)).view(n, seq)


def calibration_rows(source, *, train_glob, val_glob):
    providers = {
        "train": lambda: _rows(train_glob),
        "self": lambda: torch.randint(0, 1024, (8, 512)),
    }
    return providers[source]()
'''


def test_an_importer_that_hands_both_splits_to_a_sibling_is_judged_on_what_the_sibling_uses(tmp_path, monkeypatch):
    """Read alone, train_gpt.py would take `rows` to hold every split it hands over; with the
    sibling, the providers never read the validation pattern. With a provider that does, the
    calibration is reported at that provider, reached only when the source asked for is "val"."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(CALIB_ENTRY)
    (tmp_path / "quant_utils.py").write_text(CALIB_HELPER)
    assert not [f for f in audit_path(tmp_path).findings if f.severity == "error"]
    helper = CALIB_HELPER.replace('"self": lambda', '"val": lambda: _rows(val_glob),\n        "self": lambda')
    (tmp_path / "quant_utils.py").write_text(helper)
    line = next(i + 1 for i, t in enumerate(helper.splitlines()) if '"val": lambda' in t)
    found = lambda env: [(f.path, f.line, f.reach) for f in audit_path(tmp_path, env=env).findings  # noqa: E731
                         if f.tag == "val_gptq_calibration"]
    assert found({}) == [("quant_utils.py", line, "dormant")]
    assert found({"CALIB_SOURCE": "val"}) == [("quant_utils.py", line, "active")]


PACKED_PAIRS = '''
import numpy as np


class PairCache:
    def __init__(self, buckets=1 << 20):
        self.ctx, self.full, self.mask = np.zeros(buckets), np.zeros(buckets), buckets - 1

    def prob(self, prev, tgt):
        c = self.ctx[(prev * 1000003) & self.mask]
        return np.minimum(self.full[(prev * 1000003 + tgt * 7919) & self.mask], c) / np.maximum(c, 1)  # keyed

    def add(self, prev, tgt):
        np.add.at(self.ctx, (prev * 1000003) & self.mask, 1)
        np.add.at(self.full, (prev * 1000003 + tgt * 7919) & self.mask, 1)
'''

PAIRS_ENTRY = '''
import numpy as np
import torch
import torch.nn.functional as F
from pairs import PairCache


@torch.no_grad()
def evaluate(model, val, seq=1024):
    cache, total = PairCache(), 0.0
    for s in range(0, val.size - seq - 1, seq):
        x, y = val[s:s + seq], val[s + 1:s + seq + 1]
        p_model = F.softmax(model(torch.from_numpy(x)), -1).gather(-1, torch.from_numpy(y)[:, None]).squeeze(-1).numpy()
        total -= np.log(0.9 * p_model + 0.1 * cache.prob(x, y)).sum()
        cache.add(x, y)
    return total


if __name__ == "__main__":
    print(evaluate(torch.nn.Embedding(1024, 1024), np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64)))
'''


def test_a_sibling_shipped_packed_is_analysed_with_its_importer(tmp_path, monkeypatch):
    """pairs.py is an exec of lzma+base85 text: the class it defines is what `from pairs import
    PairCache` gets, so the merged analysis uses the unpacked text (reported in it)."""
    import base64
    import lzma

    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    blob = base64.b85encode(lzma.compress(PACKED_PAIRS.encode())).decode()
    (tmp_path / "pairs.py").write_text(f'import base64\nimport lzma\nexec(lzma.decompress(base64.b85decode("{blob}")).decode())\n')
    (tmp_path / "train_gpt.py").write_text(PAIRS_ENTRY)
    line = next(i + 1 for i, t in enumerate(PACKED_PAIRS.splitlines()) if t.endswith("# keyed"))
    found = [(f.path, f.line, f.reach) for f in audit_path(tmp_path).findings if f.rule == "target-keyed-cache"]
    assert found == [("pairs.py[unpacked]", line, "active")]


PREPARE_WITH_MAIN = '''
from huggingface_hub import hf_hub_download


def fetch_val(root):
    return hf_hub_download(repo_id="someone/retokenized", filename="fineweb_val_000000.bin", local_dir=root)


def fetch_tokenizer(root):
    return hf_hub_download(repo_id="someone/retokenized", filename="tok.model", local_dir=root)


def main():
    fetch_val("data")
    fetch_tokenizer("data")


if __name__ == "__main__":
    main()
'''

RUN_FETCHING = '''
import numpy as np
import torch
import torch.nn.functional as F


def main():
    from prepare import fetch_val
    path = fetch_val("data")
    val = torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))
    model = torch.nn.Embedding(1024, 1024)
    print(F.cross_entropy(model(val[:-1]), val[1:]).item())


if __name__ == "__main__":
    main()
'''


def test_a_preparation_helper_that_the_run_script_calls_downloads_in_the_record_run(tmp_path, monkeypatch):
    """prepare.py and train_gpt.py both define `main` (so they are not read as one module):
    the download in the function train_gpt.py calls at startup is an error; the one it leaves
    to the preparation step stays a warning."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "prepare.py").write_text(PREPARE_WITH_MAIN)
    (sub / "train_gpt.py").write_text(RUN_FETCHING)
    found = sorted((f.line, f.severity, f.reach) for f in audit_path(sub).findings if f.rule == "network-at-eval")
    assert found == [(6, "error", "active"), (10, "warning", "active")]


ASSETS = '''
import hashlib
import sys
from pathlib import Path

from huggingface_hub import snapshot_download as pull


def fetch_split(repo, revision, target="data/assets"):
    pull(repo_id=repo, repo_type="dataset", revision=revision, local_dir=target)
    return Path(target)


def verify(folder, want):
    return hashlib.sha256(Path(folder, "fineweb_val_000000.bin").read_bytes()).hexdigest() == want


if __name__ == "__main__":
    print(fetch_split(sys.argv[1], sys.argv[2]))
'''

VERIFIED_ENTRY = '''
import numpy as np
import torch
import torch.nn.functional as F
import assets


@torch.no_grad()
def main(model, data="data/datasets/fineweb10B_sp1024"):
    folder = {where}
    assert assets.verify(folder, "00")
    val = torch.from_numpy(np.fromfile(f"{{folder}}/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    return F.cross_entropy(model(val[None, :-1])[0], val[1:]).item()


if __name__ == "__main__":
    main(None)
'''


def test_a_download_in_the_main_block_of_an_imported_sibling_does_not_run_on_import(tmp_path, monkeypatch):
    """assets.py downloads only when run as a script (its `__main__` block, a pre-fetch by
    hand); the evaluation imports it for `verify`: dormant there. Calling its download
    function from the evaluation is an active error."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "assets.py").write_text(ASSETS)
    line = ASSETS.splitlines().index("    pull(repo_id=repo, repo_type=\"dataset\", revision=revision, local_dir=target)") + 1
    for where, reach in (("data", "dormant"), ('assets.fetch_split("org/val", "3c1f0d2")', "active")):
        (tmp_path / "train_gpt.py").write_text(VERIFIED_ENTRY.format(where=where))
        found = [(f.path, f.line, f.severity, f.reach) for f in audit_path(tmp_path).findings if f.rule == "network-at-eval"]
        assert found == [("assets.py", line, "error", reach)], where


def test_the_entry_script_imported_by_another_file_still_runs_its_main_block(tmp_path, monkeypatch):
    """train_gpt.py is the folder's entry: run as a script, its `__main__` block runs even
    though a benchmark helper imports it for one function."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "train_gpt.py").write_text(ASSETS)
    (tmp_path / "bench.py").write_text("import train_gpt\n\nprint(train_gpt.verify('data', '00'))\n")
    line = ASSETS.splitlines().index("    pull(repo_id=repo, repo_type=\"dataset\", revision=revision, local_dir=target)") + 1
    found = [(f.path, f.line, f.reach) for f in audit_path(tmp_path).findings if f.rule == "network-at-eval"]
    assert found == [("train_gpt.py", line, "active")]


OWN_PAYLOAD = '''
import torch


class Tilt:
    def __init__(self, starts, beta=0.5):
        self.starts, self.beta, self.last = starts, beta, torch.full((1024,), -1)

    def __call__(self, lp, pos, stream):
        prev, y = stream[pos - 1], stream[pos]
        h = self.last[prev]
        gate = self.starts[y]
        b = torch.where(gate & (h >= 0), torch.full_like(lp[:, 0], self.beta), torch.zeros_like(lp[:, 0]))
        log_z = torch.log1p(lp.gather(1, h.clamp_min(0)[:, None]).squeeze(1).exp() * torch.expm1(b))
        nll = -(lp.gather(1, y[:, None]).squeeze(1) + b * (y == h).float()) + log_z  # peek
        self.last[prev] = y
        return nll
'''

OWN_PAYLOAD_ENTRY = '''
import base64
import zlib

import numpy as np
import torch
import torch.nn.functional as F

exec(zlib.decompress(base64.b64decode("{blob}")).decode(), globals())


@torch.no_grad()
def main(model=torch.nn.Embedding(1024, 1024)):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    tilt = Tilt(torch.zeros(1024, dtype=torch.bool))
    total = 0.0
    for s in range(1, val.numel() - 257, 256):
        pos = torch.arange(s + 1, s + 257)
        lp = F.log_softmax(model(val[pos - 1]), -1)
        total += float(tilt(lp, pos, val).sum())
    return total


if __name__ == "__main__":
    main()
'''


def test_a_payload_run_in_the_files_own_globals_is_analysed_with_the_calls_into_it(tmp_path, monkeypatch):
    """The file execs a packed class into its own globals and calls it with the val stream and
    the scored positions: read alone, the payload knows nothing of its arguments; analysed with
    the file, `starts[y]` is a fact about the target, and gating the tilt on it is a peek."""
    import base64
    import zlib

    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    blob = base64.b64encode(zlib.compress(OWN_PAYLOAD.encode())).decode()
    (tmp_path / "train_gpt.py").write_text(OWN_PAYLOAD_ENTRY.replace("{blob}", blob))
    line = next(i + 1 for i, t in enumerate(OWN_PAYLOAD.splitlines()) if t.endswith("# peek"))
    found = [(f.path, f.line, f.tag) for f in audit_path(tmp_path).findings if f.severity == "error"]
    assert found == [("train_gpt.py[unpacked]", line, "future_token_peek")]


PACKAGE_STATS = '''
import torch


class Stats:
    def __init__(self, buckets=1 << 16):
        self.buckets = buckets
        self.ctx = torch.zeros(buckets)
        self.pair = torch.zeros(buckets)

    def _ctx_key(self, stream, pos):
        return (stream[pos - 1] * 1_000_003) % self.buckets

    def _pair_key(self, ck, nxt):
        return (ck * 7_919 + nxt * 104_729) % self.buckets

    def blend(self, logp, pos, stream):
        tok = stream[pos]
        ck = self._ctx_key(stream, pos)
        c = self.ctx[ck]
        j = self.pair[self._pair_key(ck, tok)]  # keyed
        q = torch.where(c > 0, torch.minimum(j, c) / c.clamp_min(1), torch.zeros_like(c))
        p = 0.9 * logp.gather(1, tok[:, None]).squeeze(1).exp() + 0.1 * q  # mixed
        self.ctx.index_add_(0, ck, torch.ones_like(c))
        self.pair.index_add_(0, self._pair_key(ck, tok), torch.ones_like(c))
        return -torch.log(p)
'''

PACKAGE_ENTRY = '''
import functools

import numpy as np
import torch
import torch.nn.functional as F
from kit.stats import Stats


class Evaluator:
    def __init__(self, val):
        self.val = val

    @torch.no_grad()
    def sliding(self, model, hook=None, seq=256):
        total = 0.0
        for s in range(1, self.val.numel() - seq - 1, seq):
            pos = torch.arange(s + 1, s + seq + 1)
            logp = F.log_softmax(model(self.val[pos - 1]), -1)
            nll = -logp.gather(1, self.val[pos][:, None]).squeeze(1) if hook is None else hook(logp, pos)
            total += float(nll.sum())
        return total


def main(model=torch.nn.Embedding(1024, 1024)):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    ev = Evaluator(val)
    stats = Stats()
    hook = functools.partial(stats.blend, stream=ev.val)
    return ev.sliding(model, hook=lambda logp, pos: hook(logp, pos))


if __name__ == "__main__":
    main()
'''


def test_a_package_method_reached_through_a_partial_and_a_forwarding_lambda(tmp_path, monkeypatch):
    """kit/stats.py's Stats.blend keys a count table on the scored token; the entry hands the
    evaluator `lambda logp, pos: hook(logp, pos)` with `hook = partial(stats.blend, stream=val)`:
    the lambda forwards its arguments, so blend gets the positions and the val stream."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "__init__.py").write_text("")
    (tmp_path / "kit" / "stats.py").write_text(PACKAGE_STATS)
    (tmp_path / "train_gpt.py").write_text(PACKAGE_ENTRY)
    lines = {tag: next(i + 1 for i, t in enumerate(PACKAGE_STATS.splitlines()) if t.endswith(tag))
             for tag in ("# keyed", "# mixed")}
    found = {(f.path, f.line, f.rule) for f in audit_path(tmp_path).findings if f.severity == "error"}
    # (the key alone extends a context hash; the mix with the model's probability of the target
    # needs the positions and the stream the lambda forwards)
    assert {("kit/stats.py", lines["# keyed"], "target-keyed-cache"),
            ("kit/stats.py", lines["# mixed"], "target-keyed-blend")} <= found


LOADS_BY_NAME = '''
import importlib
import os

import numpy as np
import torch


def main(model):
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    helper = importlib.import_module(os.environ.get("EVAL_MODULE", "evaluate"))
    return helper.adapt_and_score(model, val)

if __name__ == "__main__":
    main(None)
'''


def test_a_module_loaded_by_importlib_under_a_default_name_is_run_and_handed_data(tmp_path, monkeypatch):
    """`importlib.import_module(os.environ.get("EVAL_MODULE", "evaluate"))`: evaluate.py runs
    (it is not a file the entry never imports) and is judged on the val tokens handed to it."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(LOADS_BY_NAME)
    (sub / "evaluate.py").write_text(HELPER)
    found = [(f.path, f.rule, f.reach) for f in audit_path(sub).findings if f.severity == "error"]
    assert found == [("evaluate.py", "ttt-before-score", "active")]
