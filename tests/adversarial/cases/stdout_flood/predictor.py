"""Writes 32 MiB to stdout and 32 MiB to stderr in load(), then stays honest. The harness
must neither hang on a full pipe nor pass the flood on: accepted, exact BPB, bounded
output and bounded files."""

import os

from redteam_base import Bigram, read_weights

BLOCK = b"FLOOD " * 10922 + b"\n"


def load(artifact_path, device):
    for fd in (1, 2):
        for _ in range((32 << 20) // len(BLOCK)):
            os.write(fd, BLOCK)
    return Bigram(read_weights(artifact_path))
