"""Stalls on probe replays: any request whose first row it has seen before (a purity or
causality replay shares the original's prefix) makes it sleep forever. Replays are not
counted against the time limit, so this tests the bound on how long the harness waits
for one: it must still end the run within the time limit plus 10 s (plus start-up)."""

import time

from redteam_base import Bigram, read_weights


class StallOnReplay(Bigram):
    def __init__(self, weights):
        super().__init__(weights)
        self.seen = set()

    def score(self, tokens, n_last):
        key = tokens[0, :8].numpy().tobytes()
        if key in self.seen:
            while True:
                time.sleep(0.5)
        self.seen.add(key)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return StallOnReplay(read_weights(artifact_path))
