"""Allocates and touches memory in 256 MiB steps (up to 64 GiB) in load(). The sandbox's
memory limit must stop it (MemoryError or a kill) long before the host is hurt."""

from redteam_escape import escaped

STEP = 256 << 20
CAP = 64 << 30


def load(artifact_path, device):
    hoard = []
    while len(hoard) * STEP < CAP:
        hoard.append(bytearray(STEP))  # zero-filled: the pages are really touched
    escaped(f"allocated {CAP >> 30} GiB")
