"""Raises in its second request with a 100 kB message. Rejected; the reason is cut short."""

from redteam_base import Bigram, read_weights


class Raise(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        if self.calls == 2:
            raise ValueError("redteam deliberate failure " + "x" * 100_000)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Raise(read_weights(artifact_path))
