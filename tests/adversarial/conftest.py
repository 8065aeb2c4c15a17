"""Fixtures of the red-team suite: a small dataset and the outcomes of every case.

All cases run once per session, three at a time (each is a real `harness eval`
subprocess that mostly waits on its sandboxed worker), before the first test that needs
them; the per-case tests then only judge the recorded outcomes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.adversarial.runner import Outcome, expectations, run_case

VAL_TOKENS = 1025  # 1024 targets: 16 windows of 64, enough requests for every probe
PARALLEL = 3


@dataclass(frozen=True)
class RedteamData:
    dataset_dir: Path
    tokenizer: Path
    vocab: int


@pytest.fixture(scope="session")
def redteam_data(tiny_data, tmp_path_factory) -> RedteamData:
    from harness.data.shards import find_shards, read_shard, write_shard

    folder = tmp_path_factory.mktemp("redteam_data") / "datasets" / "redteam"
    val = read_shard(find_shards(tiny_data.dataset_dir, "val")[0])
    write_shard(folder / "redteam_val_000000.bin", val[:VAL_TOKENS])
    write_shard(folder / "redteam_train_000000.bin", read_shard(find_shards(tiny_data.dataset_dir, "train")[0]))
    return RedteamData(folder, tiny_data.tokenizer_path, tiny_data.vocab_size)


@pytest.fixture(scope="session")
def outcomes(redteam_data, tmp_path_factory) -> dict[str, Outcome]:
    cases = expectations()
    root = tmp_path_factory.mktemp("redteam_cases")

    def one(name: str) -> Outcome:
        return run_case(cases[name], root / name, redteam_data.dataset_dir, redteam_data.tokenizer,
                        redteam_data.vocab)

    # The slow ones (time limits, bombs) first, so they overlap with the quick ones.
    order = sorted(cases, key=lambda n: (cases[n].time >= 60 and not cases[n].setup.endswith("bomb_artifact")
                                         and n != "memory_bomb"))
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(order, pool.map(one, order)))
