"""Returns +inf for one logit in its second request (which would make the target's
probability 1 or 0). Must be rejected (non-finite scores)."""

from redteam_base import Bigram, read_weights


class InfOnce(Bigram):
    calls = 0

    def score(self, tokens, n_last):
        self.calls += 1
        out = super().score(tokens, n_last)
        if self.calls == 2:
            out = out.clone()
            out[-1, -1, 3] = float("inf")
        return out


def load(artifact_path, device):
    return InfOnce(read_weights(artifact_path))
