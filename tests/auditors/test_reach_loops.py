"""Reachability decided where the code runs: a pass repeated by `for _ in range(E)` rescores
only when E is over 1 (E may be a setting), and a function picked inline by a conditional
expression runs only where its branch is taken, and a choice made by validation scores that
are computed only in one branch is made by them only there."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditors import audit_path

RETRIES = '''
import os

import numpy as np
import torch
import torch.nn.functional as F

RETRIES = int(os.environ.get("CACHE_RETRIES", "{default}"))


class Cache:
    def __init__(self, vocab):
        self.pair = torch.zeros(vocab, vocab)

    def update(self, prev, nxt):
        self.pair.index_put_((prev, nxt), torch.ones_like(nxt, dtype=torch.float32), accumulate=True)


@torch.no_grad()
def cached_pass(model, val, cache, strict, seq=256):
    total = 0.0
    for s in range(0, val.numel() - seq - 1, seq):
        x, y = val[s:s + seq], val[s + 1:s + seq + 1]
        p = 0.9 * F.softmax(model(x[None])[0], -1) + 0.1 * (cache.pair[x] + 1) / (cache.pair[x] + 1).sum(-1, keepdim=True)
        total += float(-torch.log(p.gather(-1, y[:, None])).sum())
        cache.update(x, y)
    if strict and total > 1e9:
        raise ValueError(total)
    return total


def evaluate(model, val):
    cache = Cache(1024)
    for attempt in range(1 + RETRIES):
        try:
            return cached_pass(model, val, cache, strict=attempt < RETRIES)  # pass
        except ValueError:
            continue


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    evaluate(torch.nn.Identity(), val)
'''


@pytest.mark.parametrize("default,env,reach", [("1", {}, "active"), ("1", {"CACHE_RETRIES": "0"}, "dormant"),
                                               ("0", {}, "dormant"), ("0", {"CACHE_RETRIES": "2"}, "active")])
def test_a_retry_loop_rescores_only_when_it_may_run_twice(audit_errors, default, env, reach):
    """`for attempt in range(1 + RETRIES)` around a pass that fills the cache it is handed: with
    RETRIES at 0 the loop runs once and nothing is scored twice (dormant, `1 + RETRIES > 1`)."""
    text = RETRIES.replace("{default}", default)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# pass"))
    found = audit_errors(text, env)
    assert found == [(line, "two_pass_rescore", reach)]


@pytest.mark.parametrize("env,reach", [({}, "dormant"), ({"SLOT_ENABLED": "1"}, "active")])
def test_a_function_chosen_inline_by_a_setting_takes_its_reach(audit_errors, env, reach):
    """`(slot_eval if SLOT else plain_eval)(...)`: the function a conditional expression picks and
    calls at once is followed, and runs only where its branch is taken."""
    text = (Path(__file__).parent / "fixtures" / "inline_choice.py").read_text()
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: ttt-before-score")
    found = audit_errors(text, env)
    assert found == [(line, "ttt_before_score", reach)]


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"CLIP_SEARCH": "mse"}, "dormant")])
def test_a_quantization_setting_scored_on_val_only_in_one_branch_is_dormant_outside_it(tmp_path, monkeypatch, env, reach):
    """The selection itself sits under no condition, but the candidates are scored on validation
    data only where `SEARCH == "loss"`: with the other search mode the choice reads no val."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    src = (Path(__file__).parent / "fixtures" / "quant_setting_on_val.py").read_text() + "\n\nmain(None)\n"
    p = tmp_path / "train_gpt.py"
    p.write_text(src)
    line = next(i + 1 for i, t in enumerate(src.splitlines()) if t.strip() == "return min(scores, key=scores.get)")
    found = {f.line: f for f in audit_path(p, env=env).findings if f.rule == "quant-setting-on-val"}
    assert found[line].reach == reach
    assert reach == "active" or "SEARCH == 'loss'" in found[line].condition


HEAD_RESCORE = '''
import os
from functools import partial
from itertools import islice

import numpy as np
import torch
import torch.nn.functional as F


def setting(key, default, cast=None):
    cast = cast or type(default)
    return cast(os.environ.get(key, default))


def count_into(state, prev, nxt):
    state.index_put_((prev, nxt), torch.ones_like(nxt, dtype=torch.float32), accumulate=True)
    return state


@torch.no_grad()
def score_batch(model, val, state, start, seq=256, learn=True):
    x, y = val[start:start + seq], val[start + 1:start + seq + 1]
    p = 0.9 * F.softmax(model(x[None])[0], -1) + 0.1 * (state[x] + 1) / (state[x] + 1).sum(-1, keepdim=True)
    nll = float(-torch.log(p.gather(-1, y[:, None])).sum())
    state = count_into(state, x, y) if learn else state
    return nll, state


def evaluate(model, val, seq=256):
    state = torch.zeros(1024, 1024)
    run = partial(score_batch, model, val)
    starts = list(range(0, val.numel() - seq - 1, seq))
    kept = []
    for start in starts:
        nll, state = run(state, start)
        kept.append(nll)
    head = setting("RESCORE_HEAD", {default})
    {form}
    return sum(again.get(i, v) for i, v in enumerate(kept))


if __name__ == "__main__":
    val = torch.from_numpy(np.fromfile("fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    evaluate(torch.nn.Identity(), val)
'''
_HEADS = {
    "islice": "again = {i: run(state, s, learn=False)[0] for i, s in islice(enumerate(starts), head)}  # again",
    "slice": "again = dict((i, run(state, s, learn=False)[0]) for i, s in list(enumerate(starts))[:head])  # again",
    "loop": "again = {}\n    for i, s in enumerate(starts[:head]):\n        again[i] = run(state, s, learn=False)[0]  # again",
}


@pytest.mark.parametrize("form", sorted(_HEADS))
@pytest.mark.parametrize("default,env,reach", [("0", {}, "dormant"), ("0", {"RESCORE_HEAD": "16"}, "active"),
                                               ("8", {}, "active"), ("8", {"RESCORE_HEAD": "0"}, "dormant")])
def test_rescoring_the_first_k_batches_runs_only_when_k_is_not_zero(audit_errors, form, default, env, reach):
    """The first `head` batches scored again, with the state the whole pass filled, through the
    scorer bound by `partial` (`run(state, s)`): `islice(items, head)`, `items[:head]`, in a
    comprehension or a loop, take nothing when head is 0. `head` comes from a settings helper
    whose cast falls back to the default's type (`cast = cast or type(default)`)."""
    text = HEAD_RESCORE.replace("{default}", default).replace("{form}", _HEADS[form])
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.endswith("# again"))
    found = audit_errors(text, env)
    assert found == [(line, "two_pass_rescore", reach)]


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"ANNEAL_FRAC": "0"}, "dormant")])
def test_a_mixed_stream_is_reported_where_it_is_built_with_that_reach(audit_errors, env, reach):
    """The anneal stream that mixes the val split in is built only `if ANNEAL > 0`: the finding
    sits at that construction (not at the backward pass), so a zero fraction makes it dormant."""
    text = (Path(__file__).parent / "fixtures" / "anneal_mix.py").read_text()
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: val-in-training")
    found = audit_errors(text, env)
    assert found == [(line, "val_in_training", reach)]


@pytest.mark.parametrize("env,reach", [({}, "dormant"), ({"COLD_CHUNKS": "8"}, "active")])
def test_a_correction_loop_of_min_setting_and_count_runs_only_where_the_setting_is_over_zero(audit_errors, env, reach):
    """`for ci in range(min(COLD, n_chunks))` with `n_chunks` computed by the run: with COLD at 0
    the loop runs nothing whatever the count, so the rescoring in it is dormant."""
    text = (Path(__file__).parent / "fixtures" / "cold_rescore.py").read_text()
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: two-pass-rescore")
    found = audit_errors(text, env)
    assert found == [(line, "two_pass_rescore", reach)]


@pytest.mark.parametrize("env,reach", [({}, "active"), ({"LATE_GLOBS": ""}, "dormant"),
                                       ({"LATE_GLOBS": "fineweb_val_*"}, "active")])
def test_a_stream_built_only_from_a_non_empty_file_list_takes_the_lists_reach(audit_errors, env, reach):
    """`late = Batches(files) if files else None` with `files` made by a comprehension over the
    comma-separated globs of a setting: an empty setting leaves nothing after the `if g` filter,
    so the mixed stream is never built; any glob given leaves the run to find its files."""
    text = (Path(__file__).parent / "fixtures" / "generator_batches.py").read_text() + "\n\nmain(None, None)\n"
    line = next(i + 2 for i, t in enumerate(text.splitlines()) if t.strip() == "# ruleid: val-in-training")
    found = audit_errors(text, env)
    assert found == [(line, "val_in_training", reach)]


@pytest.mark.parametrize("chunk, reach", [("48000", "active"), ("32768", "dormant")])
def test_a_chunk_rounded_up_to_whole_rows_trains_ahead_only_where_it_is_not_a_multiple(tmp_path, monkeypatch, chunk, reach):
    """`rows = -(-(hi - lo) // SEQ)`, then `val[lo:lo + rows * SEQ + 1]` with `hi = min(lo + CHUNK, n)`:
    the condition `CHUNK % SEQ != 0` is the finding's, decided by the launch's TTT_CHUNK."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    source = (Path(__file__).parent / "fixtures" / "ttt_rounded_chunk.py").read_text()
    (tmp_path / "train_gpt.py").write_text(source + "\n\nif __name__ == \"__main__\":\n    main(torch.nn.Embedding(1024, 1024))\n")
    line = source.splitlines().index("        # ruleid: ttt-before-score") + 2
    found = [(f.line, f.reach) for f in audit_path(tmp_path, env={"TTT_CHUNK": chunk}).findings if f.severity == "error"]
    assert found == [(line, reach)]
