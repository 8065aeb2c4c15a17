"""A worker that dies is reported in the same words whichever of its pipes shows it first."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.sandbox.launcher import WorkerChannel, WorkerFailure, WorkerSpec
from harness.sandbox.policy import bwrap_path
from tests.evaluator.helpers import write_submission

PREDICTOR = """
import torch

class Uniform:
    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, VOCAB)

def load(path, device):
    return Uniform()
"""


@pytest.mark.parametrize("request_tokens", [4, 1 << 16])  # a request that fits the pipe, one that does not
def test_a_dead_worker_fails_the_next_request_with_its_cause(tmp_path, request_tokens):
    vocab = 8
    folder = write_submission(tmp_path / "sub", f"VOCAB = {vocab}\n" + PREDICTOR, vocab)
    spec = WorkerSpec(entrypoint=folder / "predictor.py", artifact=folder / "weights.bin", submission_root=folder,
                      files=(folder / "predictor.py", folder / "weights.bin"), packages={}, device="cpu",
                      vocab=vocab, capacity_values=request_tokens * vocab, sandbox=bwrap_path() is not None)
    with WorkerChannel(spec) as worker:
        worker.start()
        worker.wait_started(time.monotonic() + 120)
        worker.wait_ready(time.monotonic() + 60)
        worker.kill()  # dead before the request is written: which pipe shows it first is a race
        with pytest.raises(WorkerFailure, match=r"^worker died during scoring \((closed its request pipe|worker killed)"):
            worker.score(np.zeros((1, request_tokens), dtype=np.int32), 1, time.monotonic() + 30, "scoring")
