"""An honest predictor whose folder also holds `notes.py`, an unlisted symlink (made at test
time) to a secret file in the host home. The sandbox never sees the target, but trusted
code that reads every .py file of the folder (the static audit) would follow the link
and could quote the host file in its findings. The secret must appear nowhere."""

from redteam_base import Bigram, read_weights


def load(artifact_path, device):
    return Bigram(read_weights(artifact_path))
