"""Opens sockets: TCP and HTTP to a listener the test runs on 127.0.0.1 (host network
namespace), UDP to another, the host's abstract unix socket, and a public host
(DNS + TCP 443). Any success fails loudly; the test also checks its listeners got
nothing. Must be accepted with the exact BPB."""

from redteam_base import Bigram, attack_config, read_weights
from redteam_escape import escaped
from redteam_network import try_network


def load(artifact_path, device):
    found = try_network(attack_config(artifact_path))
    if found:
        escaped(found)
    return Bigram(read_weights(artifact_path))
