"""Future-token peek on about half of the windows only (rows whose token sum is even),
honest on the others. The causality probe at --probe-rate 1.0 must reject it."""

from redteam_base import Bigram, boost_next, read_weights


class SometimesPeek(Bigram):
    def score(self, tokens, n_last):
        rows = [r for r in range(tokens.shape[0]) if int(tokens[r].sum()) % 2 == 0]
        return boost_next(super().score(tokens, n_last), tokens, n_last, rows)


def load(artifact_path, device):
    return SometimesPeek(read_weights(artifact_path))
