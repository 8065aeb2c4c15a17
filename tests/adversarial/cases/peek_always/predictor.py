"""Future-token peek: every scored position (but the last) boosts the token that comes
next in the window. The causality probe must reject it."""

from redteam_base import Bigram, boost_next, read_weights


class Peek(Bigram):
    def score(self, tokens, n_last):
        return boost_next(super().score(tokens, n_last), tokens, n_last)


def load(artifact_path, device):
    return Peek(read_weights(artifact_path))
