"""Returns a tensor that claims 100,000 times the expected positions (an expanded view,
so it costs nothing to make). Must be rejected (shape) without the harness allocating it."""

from redteam_base import Bigram, read_weights


class Huge(Bigram):
    def score(self, tokens, n_last):
        out = super().score(tokens, n_last)
        return out[:, :1, :].expand(out.shape[0], n_last * 100_000, out.shape[2])


def load(artifact_path, device):
    return Huge(read_weights(artifact_path))
