"""Writes marker files outside the sandbox: the submission folder, the run folder, the
host home, the dataset folder and a host /tmp folder, from load() and from score().
Must be accepted with the exact BPB and no marker may appear."""

from redteam_base import Bigram, attack_config, read_weights
from redteam_escape import escaped, try_write_markers


class Writer(Bigram):
    def __init__(self, weights, cfg):
        super().__init__(weights)
        self.cfg = cfg

    def score(self, tokens, n_last):
        found = try_write_markers(self.cfg, "score")
        if found:
            escaped(found)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    cfg = attack_config(artifact_path)
    found = try_write_markers(cfg, "load")
    if found:
        escaped(found)
    return Writer(read_weights(artifact_path), cfg)
