"""Hangs at import time (before load() is even called). The watchdog must stop it."""

import time

while True:
    time.sleep(0.5)


def load(artifact_path, device):
    raise AssertionError("never reached")
