"""Data-preparation scripts whose val/train split starts training inside the fixed
validation set (RULES.md §9). Every script here is written for the test."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors import audit_path
from auditors.val_split import CANONICAL_VAL_DOCS

ARGPARSE = '''
import argparse
import numpy as np

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--val-docs", type=int, default={count})
    args = ap.parse_args()
    n = 0
    for doc in stream():
        if {test}:
            write(f"{{args.out}}/fineweb_{first}_{{n:06d}}.bin", doc)
        else:
            write(f"{{args.out}}/fineweb_{second}_{{n:06d}}.bin", doc)
        n += 1
'''


def findings(tmp_path, source: str, name: str = "prep.py", **extra):
    (tmp_path / name).write_text(textwrap.dedent(source))
    for other, text in extra.items():
        (tmp_path / other.replace("_", ".")).write_text(text)
    return [f for f in audit_path(tmp_path, use_cache=False).findings if f.rule == "short-val-split"]


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 200_000), below_first=st.booleans())
def test_split_counts_below_the_canonical_val_set_are_flagged(tmp_path_factory, count, below_first):
    test = "n < args.val_docs" if below_first else "n >= args.val_docs"
    first, second = ("val", "train") if below_first else ("train", "val")
    out = findings(tmp_path_factory.mktemp("prep"), ARGPARSE.format(count=f"{count:_}", test=test, first=first, second=second))
    if count >= CANONICAL_VAL_DOCS:
        assert out == []
    else:
        (f,) = out
        assert (f.tag, f.severity, f.reach, f.line) == ("val_in_training", "error", "unknown", 12)
        assert f"{CANONICAL_VAL_DOCS - count:,} of them" in f.message


def test_swapped_branches_are_not_a_leak(tmp_path):
    # documents below the count go to *train*: the val split is taken from the end, not a prefix leak
    src = ARGPARSE.format(count="10_000", test="n < args.val_docs", first="train", second="val")
    assert findings(tmp_path, src) == []


def test_environment_default_and_continue_form(tmp_path):
    src = '''
    import os
    VAL_DOCS = int(os.environ.get("VAL_DOCS", "20000"))
    val_buf, train_buf = [], []
    for i, doc in enumerate(docs()):
        if i < VAL_DOCS:
            val_buf.extend(doc)
            continue
        train_buf.extend(doc)
    '''
    (f,) = findings(tmp_path, src)
    assert f.line == 6 and "30,000 of them (60%)" in f.message


def test_conditional_expression_split(tmp_path):
    src = '''
    LIMIT = 5000
    for idx, doc in enumerate(docs()):
        target = "shards/data_val.bin" if idx < LIMIT else "shards/data_train.bin"
        append(target, doc)
    '''
    (f,) = findings(tmp_path, src)
    assert f.line == 4


def test_settings_that_are_not_document_splits_stay_clean(tmp_path):
    src = '''
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--val-stride", type=int, default=0)
    ap.add_argument("--train-seq-len", type=int, default=2048)
    args = ap.parse_args()
    for step in range(10):
        stride = args.val_stride if args.val_stride > 0 else args.train_seq_len
    if count < 1000:
        path = "x_val.bin"
    else:
        path = "x_train.bin"
    '''
    assert findings(tmp_path, src) == []  # a setting compared with a constant; a split outside any loop


def test_the_folders_own_invocation_decides(tmp_path):
    src = ARGPARSE.format(count="10_000", test="n < args.val_docs", first="val", second="train")
    assert findings(tmp_path, src, run_sh="python prep.py --out data \\\n    --val-docs 50000\n") == []
    (f,) = findings(tmp_path, src, run_sh="python prep.py --out data --val-docs=2000\n")
    assert (f.reach, f.condition) == ("active", None) and "as run.sh runs it (--val-docs 2000)" in f.message


def test_a_run_command_without_the_flag_runs_the_default(tmp_path):
    """`python prep.py --out data` in the README builds the shards with the short default; a
    sentence that only names the script runs nothing."""
    src = ARGPARSE.format(count="10_000", test="n < args.val_docs", first="val", second="train")
    (f,) = findings(tmp_path, src, README_md="`prep.py` is run once, offline.\n")
    assert f.reach == "unknown"
    (f,) = findings(tmp_path, src, README_md="```\npython prep.py --out ./data   # once\n```\n")
    assert f.reach == "active" and "as README.md runs it (with the default)" in f.message


def test_logs_that_show_the_canonical_shards_keep_an_invoked_split_unknown(tmp_path):
    """The README says to build the shards, but every train log reports the canonical 80:
    the record's runs did not train on this script's split (issue #2127's fingerprint is
    a count far above it)."""
    src = ARGPARSE.format(count="10_000", test="n < args.val_docs", first="val", second="train")
    readme = "```\npython prep.py --out ./data\n```\n"
    (f,) = findings(tmp_path, src, README_md=readme, train_seed1_log="train_shards: 80\nval_tokens: 62021632\n")
    assert f.reach == "unknown" and "the logs show 80 training shards" in f.condition
    (f,) = findings(tmp_path, src, README_md=readme, train_seed1_log="train_shards: 1499\n")
    assert f.reach == "active"


def test_audit_reports_it_and_only_an_invoked_split_rejects(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    src = ARGPARSE.format(count="10_000", test="n < args.val_docs", first="val", second="train")
    (tmp_path / "prep.py").write_text(src)
    report = audit_path(tmp_path)
    assert [f.rule for f in report.findings if f.tag == "val_in_training"] == ["short-val-split"]
    assert report.errors == []  # unknown until the folder says how the shards were built
    (tmp_path / "run.sh").write_text("python prep.py --out d\n")  # runs it with the default
    (tmp_path / "README.md").write_text("Run `python prep.py --val-docs 10000` first.\n")
    assert [f.rule for f in audit_path(tmp_path).errors] == ["short-val-split"]


CUTS = '''
import argparse
import itertools

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-val-docs", type=int, default={count})
    a = ap.parse_args()
    {head}
    {rest}
    for i, batch in enumerate(itertools.islice(train_docs, 4)):
        print(batch[:8])
'''
HEADS = {"islice": 'export(itertools.islice(iter_docs(), a.num_val_docs), "{first}")',
         "slice": 'export(list(iter_docs())[:a.num_val_docs], "{first}")'}
RESTS = {"islice": "{second}_docs = itertools.islice(iter_docs(), a.num_val_docs, None)",
         "slice": "{second}_docs = list(iter_docs())[a.num_val_docs:]"}


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1_000, 120_000), head=st.sampled_from(sorted(HEADS)), rest=st.sampled_from(sorted(RESTS)),
       swapped=st.booleans())
def test_stream_cut_at_a_short_count_is_flagged(tmp_path_factory, count, head, rest, swapped):
    """`islice(docs, N)` to val shards and `islice(docs, N, None)` to train (or list slices):
    the count is judged like a branch's, and the flag's name, which says "val", names no split."""
    first, second = ("train", "val") if swapped else ("val", "train")
    src = CUTS.format(count=count, head=HEADS[head].format(first=first), rest=RESTS[rest].format(second=second))
    out = findings(tmp_path_factory.mktemp("cut"), src)
    if swapped or count >= CANONICAL_VAL_DOCS:
        assert out == []
    else:
        (f,) = out
        assert (f.tag, f.reach, f.line) == ("val_in_training", "unknown", 9)
        assert f"{CANONICAL_VAL_DOCS - count:,} of them" in f.message


SKIPS = '''
import json

DEFAULT_VAL_DOCS = {count}


def iter_docs(path, skip):
    with open(path) as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            yield json.loads(line)["text"]


def build(path, out, val_docs=DEFAULT_VAL_DOCS):
    for n, text in enumerate(iter_docs(path, skip=val_docs)):
        write(f"{{out}}/fineweb_{split}_{{n:06d}}.bin", text)


def ensure_shards(path, out):
    return build(path, out)
'''
TRAINER = '''
import os
import prep

def main():
    prep.ensure_shards("docs_selected.jsonl", "rebuilt")
    train_files = os.path.join("rebuilt", "fineweb_train_*.bin")

if __name__ == "__main__":
    main()
'''


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1_000, 120_000), split=st.sampled_from(["train", "val"]))
def test_a_generator_skipping_a_short_head_of_the_stream_is_flagged(tmp_path_factory, count, split):
    """`if i < skip: continue` in a generator whose caller passes a count (through a parameter
    defaulting to a module constant) and writes what it yields to train shards: the documents
    from the count on are trained on. Shards it writes under a val name leak nothing."""
    out = findings(tmp_path_factory.mktemp("skip"), SKIPS.format(count=f"{count:_}", split=split))
    if split == "val" or count >= CANONICAL_VAL_DOCS:
        assert out == []
    else:
        (f,) = out
        assert (f.tag, f.reach, f.line) == ("val_in_training", "unknown", 10)
        assert f"{CANONICAL_VAL_DOCS - count:,} of them" in f.message


def test_a_split_in_a_helper_the_training_script_calls_is_active(tmp_path):
    """train_gpt.py calls the preparation helper before it trains on the shards it builds:
    the split runs in the record's own run."""
    (tmp_path / "train_gpt.py").write_text(TRAINER)
    (f,) = findings(tmp_path, SKIPS.format(count="10_000", split="train"))
    assert (f.reach, f.confidence) == ("active", "high") and "as train_gpt.py builds the shards" in f.message
