"""Exits the worker process (os._exit(3)) in the middle of its third request."""

import os

from redteam_base import Bigram, read_weights


class Crash(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        if self.calls == 3:
            os._exit(3)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Crash(read_weights(artifact_path))
