"""submission.toml parsing, paths kept inside the folder, and size accounting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.artifact import SIZE_CAP_BYTES, measure, package_dir
from harness.errors import BadInput
from harness.submission import load_submission

GOOD = """
[submission]
name = "t"
entrypoint = "predictor.py"
artifact = "weights.bin"
code = ["predictor.py", "helper.py"]
vocab_size = 1024

[eval]
seq_len = 256
stride = 64
ttt_chunk = 1024
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "predictor.py").write_text("def load(p, d):\n    return None\n")
    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 1000)
    (tmp_path / "submission.toml").write_text(GOOD)
    return tmp_path


def test_good_manifest(folder):
    sub = load_submission(folder)
    assert sub.name == "t" and sub.vocab_size == 1024 and sub.packages == ()
    assert (sub.eval.seq_len, sub.eval.stride, sub.eval.ttt_chunk, sub.eval.batch_seqs) == (256, 64, 1024, None)
    size = measure(sub)
    assert size.model_bytes == 1000
    assert size.code_bytes == len("def load(p, d):\n    return None\n") + len("X = 1\n")
    assert size.total_bytes == size.code_bytes + 1000 and size.fits


@pytest.mark.parametrize("old, new, field", [
    ('name = "t"', 'name = ""', "name"),
    ('name = "t"\n', "", "name"),
    ('entrypoint = "predictor.py"', 'entrypoint = "../predictor.py"', "entrypoint"),
    ('entrypoint = "predictor.py"', 'entrypoint = "weights.bin"', "entrypoint"),
    ('artifact = "weights.bin"', 'artifact = "/etc/passwd"', "artifact"),
    ('artifact = "weights.bin"', 'artifact = "sub/../../weights.bin"', "artifact"),
    ('artifact = "weights.bin"', 'artifact = "missing.bin"', "artifact"),
    ('artifact = "weights.bin"', "artifact = 3", "artifact"),
    ('code = ["predictor.py", "helper.py"]', 'code = ["helper.py"]', "code"),
    ('code = ["predictor.py", "helper.py"]', 'code = "predictor.py"', "code"),
    ("vocab_size = 1024", "vocab_size = 0", "vocab_size"),
    ("vocab_size = 1024", 'vocab_size = "1024"', "vocab_size"),
    ("vocab_size = 1024\n", "", "vocab_size"),
    ("stride = 64", "stride = -1", "stride"),
    ("stride = 64", "strid = 64", "strid"),
    ("vocab_size = 1024", "vocab_size = 1024\npackages = ['a-b']", "packages"),
    ("vocab_size = 1024", "vocab_size = 1024\nextra = 1", "extra"),
    ("[eval]", "[eval", "TOML"),
])
def test_bad_field_is_bad_input_naming_it(folder, old, new, field):
    text = (folder / "submission.toml").read_text()
    assert old in text
    (folder / "submission.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(BadInput, match=field):
        load_submission(folder)


def test_symlink_pointing_out_of_the_folder_is_rejected(folder, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.bin"
    outside.write_bytes(b"x")
    os.symlink(outside, folder / "link.bin")
    text = (folder / "submission.toml").read_text().replace('"weights.bin"', '"link.bin"')
    (folder / "submission.toml").write_text(text)
    with pytest.raises(BadInput, match="outside the submission folder"):
        load_submission(folder)


def test_symlink_inside_the_folder_is_fine(folder):
    os.symlink("weights.bin", folder / "alias.bin")
    text = (folder / "submission.toml").read_text().replace('"weights.bin"', '"alias.bin"')
    (folder / "submission.toml").write_text(text)
    assert load_submission(folder).artifact == (folder / "weights.bin").resolve()


def test_declared_packages_count_all_their_python_bytes(folder):
    text = (folder / "submission.toml").read_text().replace("vocab_size", 'packages = ["harness"]\nvocab_size')
    (folder / "submission.toml").write_text(text)
    sub = load_submission(folder)
    root = package_dir("harness")
    expected = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root)
                   if "__pycache__" not in d for f in files if f.endswith(".py"))
    assert measure(sub).code_bytes - (len("def load(p, d):\n    return None\n") + len("X = 1\n")) == expected


def test_unknown_package_is_bad_input(folder):
    text = (folder / "submission.toml").read_text().replace("vocab_size", 'packages = ["no_such_pkg_xyz"]\nvocab_size')
    (folder / "submission.toml").write_text(text)
    with pytest.raises(BadInput, match="no_such_pkg_xyz"):
        measure(load_submission(folder))


def test_cap_is_decimal_sixteen_million(folder):
    with open(folder / "weights.bin", "r+b") as f:
        f.truncate(SIZE_CAP_BYTES - measure(load_submission(folder)).code_bytes)
    assert measure(load_submission(folder)).fits
    with open(folder / "weights.bin", "r+b") as f:
        f.truncate(SIZE_CAP_BYTES - measure(load_submission(folder)).code_bytes + 1)
    assert not measure(load_submission(folder)).fits
