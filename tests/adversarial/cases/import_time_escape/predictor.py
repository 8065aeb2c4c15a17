"""Everything at import time: markers, secrets, sockets run as module-level code. If any
trusted harness code imported the entrypoint on the host, the marker would appear there.
Inside the sandbox nothing works: accepted, exact BPB."""

import os

from redteam_base import Bigram, attack_config, read_weights
from redteam_network import try_everything

try_everything(attack_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "artifact.bin")), "import")


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
