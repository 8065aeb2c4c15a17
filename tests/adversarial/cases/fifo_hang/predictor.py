"""An honest predictor whose folder also holds `notes.py`, a named pipe (made at test time)
that nobody ever writes. Trusted code that opens every .py file of the folder (the static
audit) blocks on it forever, outside the worker's watchdog. The harness must refuse such a
folder quickly (exit 2) instead of hanging."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
