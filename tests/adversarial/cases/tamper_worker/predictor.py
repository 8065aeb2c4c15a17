"""Peeks like peek_always and also rewrites the worker's own checks (every function of
the worker and protocol modules whose name mentions check or valid is replaced by a
no-op). The checks that count run in the harness process: still rejected by causality."""

import sys

from redteam_base import Bigram, boost_next, read_weights


def disarm():
    for name in ("harness.sandbox.worker", "harness.sandbox.protocol"):
        module = sys.modules.get(name)
        for attr in list(vars(module) if module else ()):
            if ("check" in attr or "valid" in attr) and callable(getattr(module, attr)):
                setattr(module, attr, lambda *a, **k: None)


class Peek(Bigram):
    def score(self, tokens, n_last):
        return boost_next(super().score(tokens, n_last), tokens, n_last)


def load(artifact_path, device):
    disarm()
    return Peek(read_weights(artifact_path))
