"""Patterns a helper assembles from a split's name are read per call as the text they make:
the splits `pattern_splits` reports equal those of the string the helper really returns."""

from __future__ import annotations

import ast
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors.analysis import ModuleFlow
from auditors.labels import split_labels
from auditors.templates import pattern_splits

SPLITS = st.sampled_from(["train", "val", "all", "valid", "test", "validation"])
PREFIXES = st.sampled_from(["fineweb", "fineweb10B", "shard"])
SUFFIX_RULES = st.sampled_from([
    '"" if split in ("train", "all") else f"_{split}"',
    'f"_{split}"',
    '"_" + split if split != "train" else ""',
    '"_train" if split == "train" else "_val"',
])


@settings(max_examples=60, deadline=None)
@given(split=SPLITS, prefix=PREFIXES, rule=SUFFIX_RULES)
def test_the_pattern_read_per_call_is_the_pattern_made(split, prefix, rule):
    helper = (f"def shard_pattern(root, split):\n"
              f"    suffix = {rule}\n"
              f"    return os.path.join(root, f\"{prefix}{{suffix}}_*.bin\")\n")
    source = "import os\n" + helper + f"\nshard_pattern('./data', {split!r})\n"
    m = ModuleFlow(source, ast.parse(source))
    call = next(n for n in ast.walk(m.tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "shard_pattern")
    namespace: dict = {"os": os}
    exec(compile(helper, "<helper>", "exec"), namespace)  # our own generated helper, never submission code
    made = namespace["shard_pattern"]("./data", split)
    got = pattern_splits(m.functions["shard_pattern"], call)
    assert got == split_labels(made)


ROLES = st.sampled_from(["calib", "smoke", "probe"])
TABLES = st.fixed_dictionaries({"calib": SPLITS, "smoke": SPLITS, "probe": SPLITS})


@settings(max_examples=60, deadline=None)
@given(role=ROLES, table=TABLES, prefix=PREFIXES)
def test_a_split_looked_up_by_a_settings_role_is_read_with_the_role_default(role, table, prefix):
    """`shard_pattern(args, args.role)` with `ROLE_SPLITS = {"calib": "val", ...}` and
    `role = os.environ.get("ROLE", "calib")` in the settings class: the pattern made with the
    default role, the lookup read through the table."""
    helper = (f"ROLE_SPLITS = {table!r}\n\n"
              f"def shard_pattern(args, role):\n"
              f"    split = ROLE_SPLITS[role]\n"
              f"    return os.path.join(args.data_path, f\"{prefix}_{{split}}_*.bin\")\n")
    settings_class = (f"class Hyperparameters:\n"
                      f"    data_path = './data'\n"
                      f"    role = os.environ.get('ROLE', {role!r})\n")
    source = ("import os\n" + settings_class + helper +
              "\ndef main():\n    args = Hyperparameters()\n    return shard_pattern(args, args.role)\n")
    m = ModuleFlow(source, ast.parse(source))
    call = next(n for n in ast.walk(m.tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "shard_pattern")
    namespace: dict = {"os": os}
    exec(compile(helper, "<helper>", "exec"), namespace)  # our own generated helper, never submission code
    made = namespace["shard_pattern"](type("A", (), {"data_path": "./data"}), role)
    got = pattern_splits(m.functions["shard_pattern"], call, m.functions["main"])
    assert got == split_labels(made)
