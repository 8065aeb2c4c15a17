"""Count the bigrams of a dataset's train shards into this example's artifact.

    python submissions/example/build_artifact.py DATASET_DIR [--vocab 1024] [--alpha 0.1]

Trusted tooling run by the author, not by the evaluator (which only loads the result).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.atomic import atomic_write_bytes
from harness.data.shards import find_shards, read_shard

from bigram_format import encode


def count_bigrams(dataset_dir: Path, vocab: int) -> np.ndarray:
    counts = np.zeros((vocab, vocab), dtype=np.int64)
    for shard in find_shards(dataset_dir, "train"):
        tokens = read_shard(shard, vocab).astype(np.int64)
        np.add.at(counts, (tokens[:-1], tokens[1:]), 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("bigram.bgm"))
    args = parser.parse_args()
    atomic_write_bytes(args.out, encode(count_bigrams(args.dataset_dir, args.vocab), args.alpha))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
