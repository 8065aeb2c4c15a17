"""The benchmark corpus builder: each pull-request head's added or changed Python files,
one copy per content, read from git objects only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def test_heads_contribute_their_changed_python_files_once_per_content(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, {"train_gpt.py": "print('base')\n", "README.md": "x\n"}, "base")
    _git(repo, "checkout", "-qb", "pr1")
    one = _commit(repo, {"records/a/train_gpt.py": "A = 1\n", "records/a/notes.txt": "n\n", "train_gpt.py": "print(1)\n"}, "pr1")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "checkout", "-qb", "pr2")
    two = _commit(repo, {"records/b/train_gpt.py": "A = 1\n", "records/b/eval.py": "B = 2\n"}, "pr2")
    _git(repo, "update-ref", "refs/pull/1/head", one)
    _git(repo, "update-ref", "refs/pull/2/head", two)
    out = tmp_path / "corpus"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pr_corpus.py"), str(repo), str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*.py"))
    # the second head's copy of `A = 1` is the first head's content: kept once
    assert found == ["00001/records/a/train_gpt.py", "00001/train_gpt.py", "00002/records/b/eval.py"]
    assert "3 distinct files" in run.stdout


def test_a_folder_that_is_no_git_directory_is_bad_input(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pr_corpus.py"), str(tmp_path / "none"), str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and run.stderr.startswith("pr_corpus: error:")
