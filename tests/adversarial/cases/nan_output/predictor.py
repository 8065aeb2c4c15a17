"""Returns a NaN logit in its third request. Must be rejected (non-finite scores)."""

from redteam_base import Bigram, read_weights


class NaNOnce(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        out = super().score(tokens, n_last)
        if self.calls == 3:
            out = out.clone()
            out[0, 0, 7] = float("nan")
        return out


def load(artifact_path, device):
    return NaNOnce(read_weights(artifact_path))
