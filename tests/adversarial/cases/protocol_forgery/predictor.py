"""Writes a forged reply straight into the worker's response pipe (found in sys.argv):
a header with a bad magic, then keeps answering. The harness must reject it as garbage."""

import os
import sys

from redteam_base import Bigram, read_weights


class Forge(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        if self.calls == 2 and "--resp-fd" in sys.argv:
            fd = int(sys.argv[sys.argv.index("--resp-fd") + 1])
            os.write(fd, b"EVIL" + b"\xff" * 24)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Forge(read_weights(artifact_path))
