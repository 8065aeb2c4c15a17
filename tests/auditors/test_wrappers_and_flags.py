"""Reach across files and launch flags: a file the entry point runs through exec,
runpy or a subprocess counts as run (with the environment the wrapper sets), and an
argparse flag keeps its default unless the folder's own run command passes it."""

from __future__ import annotations

import base64
import lzma

import pytest

from auditors import audit_path
from auditors.unpack import unpack_all

CACHE_READ = '''import os
import numpy as np

def score(val, ctx_t, full_t):
    h = val[:-1].astype(np.int64) * 1000003
    key = (h ^ (val[1:].astype(np.int64) * 998244353)) % 65536
    return full_t[key] / np.maximum(ctx_t[h % 65536], 1)

if os.environ.get("NGRAM_EVAL", "0") == "1":
    score(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16), None, None)
'''

WRAPPERS = {
    "exec": 'import os\nos.environ.setdefault("NGRAM_EVAL", "1")\nhere = os.path.dirname(__file__)\n'
            'exec(compile(open(os.path.join(here, "inner.py")).read(), "inner.py", "exec"))\n',
    "runpy": 'import os, runpy\nos.environ["NGRAM_EVAL"] = "1"\n'
             'runpy.run_path(os.path.join(os.path.dirname(__file__), "inner.py"), run_name="__main__")\n',
    "subprocess": 'import os, subprocess, sys\nos.environ["NGRAM_EVAL"] = "1"\n'
                  'subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "inner.py")], check=True)\n',
    "runpy with a settings dict": 'import os, runpy\nSETTINGS = {"ITERATIONS": "9000", "NGRAM_EVAL": "1"}\n'
                                  'for key, value in SETTINGS.items():\n    os.environ.setdefault(key, value)\n'
                                  'runpy.run_path(os.path.join(os.path.dirname(__file__), "inner.py"), run_name="__main__")\n',
}


def reaches(report, path):
    return {(f.rule, f.reach) for f in report.findings if f.path == path and f.severity == "error"}


@pytest.mark.parametrize("how", sorted(WRAPPERS))
def test_a_file_the_entry_point_runs_counts_as_run_with_its_environment(tmp_path, monkeypatch, how):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / how
    folder.mkdir()
    (folder / "train_gpt.py").write_text(WRAPPERS[how])
    (folder / "inner.py").write_text(CACHE_READ)
    assert reaches(audit_path(folder), "inner.py") == {("target-keyed-cache", "active")}
    (folder / "train_gpt.py").write_text("print('the entry point runs nothing else')\n")
    assert reaches(audit_path(folder), "inner.py") == {("target-keyed-cache", "dormant")}


FLAGGED = '''import argparse
import numpy as np

def score(val, full_t):
    key = (val[:-1].astype(np.int64) * 1000003 ^ val[1:].astype(np.int64) * 998244353) % 65536
    return full_t[key]

ap = argparse.ArgumentParser()
ap.add_argument("--ngram-cache", action="store_true")
ap.add_argument("--order", type=int, default=0)
args = ap.parse_args()
if args.ngram_cache or args.order > 2:
    score(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16), None)
'''


def test_an_argparse_flag_keeps_its_default_unless_the_run_command_passes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "flags"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(FLAGGED)
    report = audit_path(folder)
    found = [f for f in report.findings if f.rule == "target-keyed-cache"]
    assert [f.reach for f in found] == ["dormant"] and "--ngram_cache = False" in found[0].condition
    (folder / "run.sh").write_text("torchrun --nproc_per_node=8 train_gpt.py \\\n  --ngram-cache\n")
    assert reaches(audit_path(folder), "train_gpt.py") == {("target-keyed-cache", "active")}
    (folder / "run.sh").write_text("torchrun --nproc_per_node=8 train_gpt.py --order 3\n")
    assert reaches(audit_path(folder), "train_gpt.py") == {("target-keyed-cache", "active")}


def test_a_blob_split_over_a_list_of_literals_is_joined_and_unpacked():
    inner = "x = 1\n"
    blob = base64.b85encode(lzma.compress(inner.encode())).decode()
    parts = [blob[i:i + 40] for i in range(0, len(blob), 40)]
    source = f"import base64, lzma\n_P = {parts!r}\nexec(lzma.decompress(base64.b85decode(''.join(_P))))\n"
    assert unpack_all("w.py", source) == [("w.py[unpacked]", inner)]


@pytest.mark.parametrize("how", sorted(WRAPPERS))
def test_a_wrapper_audited_alone_brings_the_file_it_runs(tmp_path, how):
    (tmp_path / "inner.py").write_text(CACHE_READ)
    (tmp_path / "wrapper.py").write_text(WRAPPERS[how])
    (tmp_path / "unrelated.py").write_text(CACHE_READ)  # in the folder, never named: not audited
    report = audit_path(tmp_path / "wrapper.py", use_cache=False)
    assert reaches(report, "inner.py") == {("target-keyed-cache", "active")}  # with the wrapper's NGRAM_EVAL=1
    assert {f.path for f in report.findings} == {"inner.py"}


def test_a_module_imported_by_a_file_audited_alone_is_audited(tmp_path):
    (tmp_path / "cachelib.py").write_text(CACHE_READ.replace('"0"', '"1"'))
    (tmp_path / "train_gpt.py").write_text("import cachelib\nfrom os import path\n")
    report = audit_path(tmp_path / "train_gpt.py", use_cache=False)
    assert reaches(report, "cachelib.py") == {("target-keyed-cache", "active")}
