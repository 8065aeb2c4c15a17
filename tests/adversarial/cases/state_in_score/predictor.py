"""State changed inside score(): a call counter shifts one logit per call. The purity
probe (replay of the same request) must reject it."""

from redteam_base import Bigram, read_weights


class Counter(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        out = super().score(tokens, n_last).clone()
        out[..., self.calls % self.vocab] += 5.0
        return out


def load(artifact_path, device):
    return Counter(read_weights(artifact_path))
