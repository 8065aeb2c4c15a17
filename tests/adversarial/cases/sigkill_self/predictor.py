"""Sends itself SIGKILL in its second request."""

import os
import signal

from redteam_base import Bigram, read_weights


class Die(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        if self.calls == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Die(read_weights(artifact_path))
