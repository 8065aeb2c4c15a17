"""Spins forever in score(). The watchdog must stop it at the time limit."""

from redteam_base import Bigram, read_weights


class Spin(Bigram):
    def score(self, tokens, n_last):
        while True:
            pass


def load(artifact_path, device):
    return Spin(read_weights(artifact_path))
