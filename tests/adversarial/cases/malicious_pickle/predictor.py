"""The artifact is a pickle whose reduce hook runs code on load: it tries to write a
marker into host folders and read the host secret (environment and a file in the host
home). Only the sandboxed worker unpickles it, so it achieves nothing: accepted, exact
BPB, no marker, no leak. If trusted code ever unpickled it, the marker would appear."""

import pickle

from redteam_base import Bigram, parse_weights


def load(artifact_path, device):
    with open(artifact_path, "rb") as f:
        blob = pickle.load(f)  # runs the payload; it raises if it got out
    return Bigram(parse_weights(blob["weights"]))
