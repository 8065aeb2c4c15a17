"""The artifact's tail is a zstd frame of 128 KiB RLE blocks that expands about
30,000-fold (to 32 GiB); load() decompresses it into memory. The sandbox's memory limit
must stop it."""

import zstandard

from redteam_base import read_weights, weights_size
from redteam_escape import escaped


def load(artifact_path, device):
    weights = read_weights(artifact_path)
    with open(artifact_path, "rb") as f:
        f.seek(weights_size(weights.shape[1]))
        reader = zstandard.ZstdDecompressor().stream_reader(f)
        hoard = []
        while True:
            block = reader.read(64 << 20)
            if not block:
                break
            hoard.append(block)
    escaped(f"decompressed {sum(map(len, hoard)) >> 30} GiB")
