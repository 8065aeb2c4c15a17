"""Returns one logit too few per position (vocab - 1). Must be rejected (shape)."""

from redteam_base import Bigram, read_weights


class Short(Bigram):
    def score(self, tokens, n_last):
        return super().score(tokens, n_last)[..., :-1]


def load(artifact_path, device):
    return Short(read_weights(artifact_path))
