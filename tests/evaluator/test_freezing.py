"""Between its calls the worker is stopped: work it leaves running in a thread gets no
CPU time that the time limit does not count."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harness.sandbox.launcher import WorkerChannel, WorkerSpec
from harness.sandbox.policy import bwrap_path

from .helpers import write_submission

BUSY = """
import threading
import torch

def _spin():
    x = 0
    while True:
        x += 1

class Busy:
    def score(self, tokens, n_last):
        return torch.zeros((tokens.shape[0], n_last, VOCAB))

def load(path, device):
    threading.Thread(target=_spin, daemon=True).start()  # keeps computing after load() returns
    return Busy()
"""


def cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / 100.0


@pytest.mark.skipif(bwrap_path() is None, reason="needs bubblewrap")
def test_a_thread_left_running_gets_no_time_between_calls(tmp_path):
    sub = write_submission(tmp_path / "busy", "VOCAB = 16\n" + BUSY, 16)
    spec = WorkerSpec(entrypoint=sub / "predictor.py", artifact=sub / "weights.bin", submission_root=sub,
                      packages={}, device="cpu", vocab=16, capacity_values=4 * 8 * 16, sandbox=True,
                      files=(sub / "predictor.py", sub / "weights.bin"))
    with WorkerChannel(spec) as worker:
        worker.start()
        worker.wait_started(time.monotonic() + 60)
        worker.wait_ready(time.monotonic() + 60)
        pids = worker._tree()
        before = cpu_seconds(pids)
        time.sleep(1.0)
        assert cpu_seconds(pids) - before < 0.1  # stopped: the spinning thread got no CPU
        worker.score(np.zeros((4, 8), dtype=np.int64), 8, time.monotonic() + 30, "a request")
        worker.resume()  # the control: let it run and the same thread burns CPU
        before = cpu_seconds(pids)
        time.sleep(1.0)
        assert cpu_seconds(pids) - before > 0.3
