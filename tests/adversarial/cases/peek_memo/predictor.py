"""Probe evasion by memoization: peeks like peek_always, but remembers its output for
every row prefix and returns the remembered output whenever a later request repeats
that prefix. A replay probe sent after the real request then sees the same numbers at
every position before the cut, so it cannot tell."""

from redteam_base import Bigram, boost_next, read_weights


class MemoPeek(Bigram):
    def __init__(self, weights):
        super().__init__(weights)
        self.memo = {}

    def score(self, tokens, n_last):
        fresh = boost_next(super().score(tokens, n_last), tokens, n_last)
        T = tokens.shape[1]
        for r in range(tokens.shape[0]):
            for j in range(n_last):
                key = tokens[r, : T - n_last + j + 1].numpy().tobytes()
                if key in self.memo:
                    fresh[r, j] = self.memo[key]
                else:
                    self.memo[key] = fresh[r, j].clone()
        return fresh


def load(artifact_path, device):
    return MemoPeek(read_weights(artifact_path))
