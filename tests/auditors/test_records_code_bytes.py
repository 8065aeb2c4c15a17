"""The code a run ships is train_gpt.py and the folder's modules it imports (also through
them); a declared total that leaves that code out does not hide an artifact above the cap."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors.records import CAP_BYTES, check_records, shipped_code

ENTRY = "import torch\nfrom kit import model\nimport helpers\n\nprint(model, helpers)\n"


def _folder(root, pad: int = 0):
    (root / "kit").mkdir(exist_ok=True)
    (root / "train_gpt.py").write_text(ENTRY + "#" * pad + "\n")
    (root / "kit" / "__init__.py").write_text("from .layers import Block\n")
    (root / "kit" / "layers.py").write_text("class Block:\n    pass\n")
    (root / "kit" / "model.py").write_text("from . import layers\nWIDTH = 512\n")
    (root / "kit" / "unused.py").write_text("X = 1\n")
    (root / "helpers.py").write_text("def f():\n    return 1\n")
    (root / "prepare_data.py").write_text("import helpers\n")
    (root / "README.md").write_text("# run\n")
    (root / "train.log").write_text("final val_loss:1.9 val_bpb:1.12\n")


def test_the_shipped_code_is_the_entry_and_what_it_imports(tmp_path):
    _folder(tmp_path)
    names = [name for name, _ in shipped_code(tmp_path)]
    assert names == ["helpers.py", "kit/__init__.py", "kit/layers.py", "kit/model.py", "train_gpt.py"]
    assert dict(shipped_code(tmp_path))["train_gpt.py"] == (tmp_path / "train_gpt.py").stat().st_size


@settings(max_examples=40, deadline=None)
@given(model=st.integers(15_900_000, 16_010_000), pad=st.integers(0, 3000))
def test_an_artifact_above_the_cap_once_all_its_code_is_counted_is_oversize(tmp_path_factory, model, pad):
    root = tmp_path_factory.mktemp("rec")
    _folder(root, pad)
    entry = (root / "train_gpt.py").stat().st_size
    declared = {"val_bpb": 1.12, "bytes_model": model, "bytes_code": entry, "bytes_total": model + entry}
    (root / "submission.json").write_text(json.dumps(declared))
    oversize = [f for f in check_records(root) if f.tag == "oversize_artifact"]
    actual = model + sum(size for _, size in shipped_code(root))
    assert bool(oversize) == (actual > CAP_BYTES)
    if model + entry <= CAP_BYTES < actual:
        assert oversize[0].message.startswith(f"model {model:,} bytes + the code the run ships")
