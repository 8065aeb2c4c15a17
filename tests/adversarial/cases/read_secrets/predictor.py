"""Looks for the host's secrets: its own environment, /proc/1/environ, the parent's and
every visible process's environ, and a secret file in the host home. Found secrets are
printed and raised (which would carry them into the harness's reasons). Must find none
(accepted, exact BPB, the secret never appears in any output)."""

from redteam_base import Bigram, attack_config, read_weights
from redteam_escape import escaped, try_read_secrets


class Snoop(Bigram):
    def __init__(self, weights, cfg):
        super().__init__(weights)
        self.cfg = cfg

    def score(self, tokens, n_last):
        found = try_read_secrets(self.cfg)
        if found:
            escaped(found)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    cfg = attack_config(artifact_path)
    found = try_read_secrets(cfg)
    if found:
        escaped(found)
    return Snoop(read_weights(artifact_path), cfg)
