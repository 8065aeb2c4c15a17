"""Forks up to 200 children that sleep for ten minutes (each renamed with a tag the test
looks for), then hangs. The watchdog must stop it and no child may survive the run."""

import ctypes
import os
import time

from redteam_base import attack_config


def set_name(tag):
    ctypes.CDLL(None).prctl(15, tag.encode()[:15], 0, 0, 0)  # PR_SET_NAME: shows in /proc/PID/comm


def load(artifact_path, device):
    tag = attack_config(artifact_path)["process_tag"]
    for _ in range(200):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            set_name(tag)
            time.sleep(600)
            os._exit(0)
    while True:
        time.sleep(0.5)
