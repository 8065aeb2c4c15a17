"""Predictors that break the contract are rejected with the right reason (sandboxed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness

from tests.evaluator.helpers import evaluate, write_submission

# Shared by the predictors below: uniform logits, causal and pure.
HONEST = """
import torch

class Uniform:
    def __init__(self, vocab):
        self.vocab = vocab

    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, self.vocab)
"""

CHEATERS = {
    # reads the token it is asked to predict (the next one in its own row)
    "peeks_next_token": (HONEST + """
class Peek(Uniform):
    def score(self, tokens, n_last):
        out = torch.zeros(tokens.shape[0], n_last, self.vocab)
        nxt = tokens[:, -n_last + 1:] if n_last > 1 else tokens[:, :0]
        out[:, : n_last - 1].scatter_(2, nxt.unsqueeze(-1), 20.0)
        return out

def load(path, device):
    return Peek(VOCAB)
""", "causality probe failed"),
    # reads a later token from the NEXT row of the batch (stream coordinates catch it)
    "peeks_other_row": (HONEST + """
class RowPeek(Uniform):
    def score(self, tokens, n_last):
        out = torch.zeros(tokens.shape[0], n_last, self.vocab)
        for r in range(tokens.shape[0] - 1):
            out[r, :, int(tokens[r + 1, -1]) ] = 5.0
        return out

def load(path, device):
    return RowPeek(VOCAB)
""", "causality probe failed"),
    # score() changes its state
    "stateful_score": (HONEST + """
class Drift(Uniform):
    calls = 0
    def score(self, tokens, n_last):
        self.calls += 1
        out = torch.zeros(tokens.shape[0], n_last, self.vocab)
        out[..., 0] = float(self.calls)
        return out

def load(path, device):
    return Drift(VOCAB)
""", "purity probe failed"),
    "returns_nan": (HONEST + """
class NaN(Uniform):
    def score(self, tokens, n_last):
        out = torch.zeros(tokens.shape[0], n_last, self.vocab)
        out[0, -1, 3] = float("nan")
        return out

def load(path, device):
    return NaN(VOCAB)
""", "non-finite score nan at row 0"),
    # finite logits, but a target gets probability 0: rejected, not an infinite score
    "zero_probability": (HONEST + """
class Zero(Uniform):
    def score(self, tokens, n_last):
        out = torch.full((tokens.shape[0], n_last, self.vocab), -3e38)
        out[:, :, 0] = 3e38  # every other token: log_softmax gives -inf
        return out

def load(path, device):
    return Zero(VOCAB)
""", "zero probability"),
    "wrong_shape": (HONEST + """
class Short(Uniform):
    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, self.vocab - 1)

def load(path, device):
    return Short(VOCAB)
""", "score() returned shape"),
    "integer_dtype": (HONEST + """
class Ints(Uniform):
    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, self.vocab, dtype=torch.int32)

def load(path, device):
    return Ints(VOCAB)
""", "expected a floating point tensor"),
    "sleeps_past_time_limit": (HONEST + """
import time

class Slow(Uniform):
    def score(self, tokens, n_last):
        time.sleep(600)

def load(path, device):
    return Slow(VOCAB)
""", "time limit exceeded during"),  # the original call or its replay, whichever the order put first
    "opens_a_socket": (HONEST + """
import socket

def load(path, device):
    socket.create_connection(("1.1.1.1", 443), timeout=5).close()
    return Uniform(VOCAB)
""", "Network is unreachable"),
    # the repository (data/, runs/) is never visible, whatever its path
    # runs without capabilities even when the harness is root
    "uses_a_privilege": (HONEST + """
import os

def load(path, device):
    os.chroot("/")
    return Uniform(VOCAB)
""", "Operation not permitted"),
    # shrinks the scores file under the transport: the worker faults, the harness does not
    "truncates_scores_file": (HONEST + """
import os

def load(path, device):
    os.truncate("/run/pgolf/scores.bin", 0)
    return Uniform(VOCAB)
""", "worker died during"),
    # /tmp is capped, so filling it cannot exhaust the machine's memory
    "fills_tmp": (HONEST + """
def load(path, device):
    with open("/tmp/fill", "wb") as f:
        for _ in range(1024):
            f.write(bytes(1 << 20))
    return Uniform(VOCAB)
""", "File too large"),  # RLIMIT_FSIZE stops one file before the capped /tmp fills
    # neither the data folder nor the repository (data/, runs/) is visible; an escape
    # through either path makes the predictor honest, so the run would be accepted
    "reads_data_or_repo_files": (HONEST + """
def load(path, device):
    errors = []
    for target in (SHARD, REPO_FILE):
        try:
            open(target, "rb").close()
        except OSError as e:
            errors.append(e)
    if len(errors) < 2:
        return Uniform(VOCAB)
    raise errors[0]
""", "No such file or directory"),
    # the submission folder and the sandbox root are read-only
    "writes_outside_tmp": (HONEST + """
def load(path, device):
    errors = []
    for target in ("/submission/weights.bin", "/planted.py"):
        try:
            open(target, "ab").close()
        except OSError as e:
            errors.append(e)
    if len(errors) < 2:
        return Uniform(VOCAB)
    raise errors[0]
""", "Read-only file system"),
    "dies": (HONEST + """
import os

class Dies(Uniform):
    def score(self, tokens, n_last):
        os._exit(7)

def load(path, device):
    return Dies(VOCAB)
""", "(worker exited with code 7)"),
    # forges a reply on the worker's response pipe
    "writes_garbage": (HONEST + """
import os, sys

class Garbage(Uniform):
    def score(self, tokens, n_last):
        fd = int(sys.argv[sys.argv.index("--resp-fd") + 1])
        os.write(fd, b"garbage!" * 8)
        return super().score(tokens, n_last)

def load(path, device):
    return Garbage(VOCAB)
""", "garbage from worker"),
}


@pytest.mark.parametrize("name", sorted(CHEATERS))
def test_cheater_is_rejected_with_the_reason(name, tiny_data, tmp_path):
    source, reason = CHEATERS[name]
    shard = next(tiny_data.dataset_dir.glob("*_val_*.bin"))
    repo_file = Path(harness.__file__).resolve().parents[1] / "pyproject.toml"
    source = f"VOCAB = {tiny_data.vocab_size}\nSHARD = {str(shard)!r}\nREPO_FILE = {str(repo_file)!r}\n" + source
    sub = write_submission(tmp_path / name, source, tiny_data.vocab_size)
    result = evaluate(sub, tiny_data, probe_rate=1.0, time_limit=3.0, max_val_tokens=1500)
    assert result["verdict"] == "rejected"
    assert result["val_bpb"] is None
    assert any(reason in r for r in result["reasons"]), result["reasons"]


def test_the_shared_honest_predictor_is_accepted(tiny_data, tmp_path):
    """The cheaters differ from an accepted predictor only in their cheat."""
    source = f"VOCAB = {tiny_data.vocab_size}\n" + HONEST + "\ndef load(path, device):\n    return Uniform(VOCAB)\n"
    sub = write_submission(tmp_path / "honest", source, tiny_data.vocab_size)
    result = evaluate(sub, tiny_data, probe_rate=1.0, time_limit=30.0, max_val_tokens=1500)
    assert result["verdict"] == "accepted", result["reasons"]
    n = result["eval_config"]["requests"]
    assert result["probes"] == {"causality": {"run": n, "failed": 0}, "purity": {"run": n, "failed": 0}}


MEMO = HONEST + """
class Memo(Uniform):
    '''Peeks at the next token the first time it sees a row prefix, then replays that output.'''

    def __init__(self, vocab):
        super().__init__(vocab)
        self.memo = {}

    def score(self, tokens, n_last):
        b, t = tokens.shape
        out = torch.zeros(b, n_last, self.vocab)
        for r in range(b):
            row = tokens[r].tolist()
            for i in range(n_last):
                pos = t - n_last + i
                key = tuple(row[: pos + 1])
                if key not in self.memo:
                    v = torch.zeros(self.vocab)
                    if pos + 1 < t:
                        v[row[pos + 1]] = 20.0
                    self.memo[key] = v
                out[r, i] = self.memo[key]
        return out

def load(path, device):
    return Memo(VOCAB)
"""


def test_memoizing_peeker_is_caught_by_independent_probes(tiny_data, tmp_path):
    sub = write_submission(tmp_path / "memo", f"VOCAB = {tiny_data.vocab_size}\n" + MEMO, tiny_data.vocab_size)
    result = evaluate(sub, tiny_data, probe_rate=1.0, max_val_tokens=1500, independent_probes=True)
    assert result["verdict"] == "rejected"
    assert any("causality probe failed" in r for r in result["reasons"]), result["reasons"]
    assert result["eval_config"]["independent_probes"] is True


def test_only_listed_files_are_visible_to_the_worker(tiny_data, tmp_path):
    """Weights or code kept in an unlisted file of the folder would escape the size
    accounting: the sandbox shows the listed code and the artifact, nothing else."""
    source = (f"VOCAB = {tiny_data.vocab_size}\n" + HONEST + "\nimport os\n\ndef load(path, device):\n"
              "    import unlisted_weights\n    return Uniform(unlisted_weights.V)\n")
    sub = write_submission(tmp_path / "unlisted", source, tiny_data.vocab_size)
    (sub / "unlisted_weights.py").write_text(f"V = {tiny_data.vocab_size}\n")
    result = evaluate(sub, tiny_data, probe_rate=0.0, time_limit=30.0, max_val_tokens=600)
    assert result["verdict"] == "rejected"
    assert any("No module named 'unlisted_weights'" in r for r in result["reasons"]), result["reasons"]
    manifest = sub / "submission.toml"
    manifest.write_text(manifest.read_text().replace('code = ["predictor.py"]', 'code = ["predictor.py", "unlisted_weights.py"]'))
    result = evaluate(sub, tiny_data, probe_rate=0.0, time_limit=30.0, max_val_tokens=600)
    assert result["verdict"] == "accepted", result["reasons"]
