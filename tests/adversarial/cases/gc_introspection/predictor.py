"""Looks for future tokens inside the worker process itself: every array, tensor and bytes
object the garbage collector knows, the worker's stack frames, and data waiting in the
request pipe (FIONREAD). If the worker held any token beyond the current request it
would fail loudly. Must be accepted with the exact BPB."""

import fcntl
import gc
import struct
import sys
import termios

import numpy as np
import torch

from redteam_base import Bigram, read_weights
from redteam_escape import escaped


def pending_bytes(fd):
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def longest_token_array(limit):
    best = 0
    for obj in gc.get_objects():
        try:
            if isinstance(obj, np.ndarray) and obj.dtype.kind in "iu":
                n = obj.size
            elif isinstance(obj, torch.Tensor) and not obj.is_floating_point():
                n = obj.numel()
            elif isinstance(obj, (bytes, bytearray)) and len(obj) > 4 * limit:
                n = len(obj) // 4
            else:
                continue
        except Exception:
            continue
        best = max(best, n)
    return best


class Introspect(Bigram):
    def score(self, tokens, n_last):
        argv = sys.argv
        if "--req-fd" in argv:
            waiting = pending_bytes(int(argv[argv.index("--req-fd") + 1]))
            if waiting:
                escaped(f"{waiting} bytes of a later request already sit in the pipe")
        limit = tokens.numel() + 1024
        longest = longest_token_array(limit)
        if longest > 4 * limit + 65536:
            escaped(f"an integer array of {longest} elements lives in the worker")
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Introspect(read_weights(artifact_path))
