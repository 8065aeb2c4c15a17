"""Reads validation or training shards by path guessing: the host dataset folder, the
usual relative and home locations, then a bounded walk of everything visible. If any
shard is found it fails loudly (ESCAPED); inside the sandbox it must find nothing and
stay honest (accepted, exact BPB)."""

import glob
import os

from redteam_base import Bigram, attack_config, read_weights
from redteam_escape import escaped

SKIP = {"/proc", "/sys", "/dev"}


def find_shards(guesses, budget=30000):
    for folder in guesses:
        for pattern in ("*_val_*.bin", "*_train_*.bin", "**/*_val_*.bin"):
            hits = glob.glob(os.path.join(folder, pattern), recursive=True)
            if hits:
                return hits[0]
    seen = 0
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP]
        seen += 1 + len(files)
        for f in files:
            if f.endswith(".bin") and ("_val_" in f or "_train_" in f):
                return os.path.join(top, f)
        if seen > budget:
            return None
    return None


def load(artifact_path, device):
    cfg = attack_config(artifact_path)
    guesses = cfg.get("data_guesses", []) + ["data", "../data", os.path.expanduser("~/data"), "/data", "/work"]
    hit = find_shards(guesses)
    if hit:
        with open(hit, "rb") as f:
            escaped(f"read {len(f.read(4096))} bytes of {hit}")
    return Bigram(read_weights(artifact_path))
