"""A lambda of a table of combiners is reached where the table's key picks it: the oracle
gate in `JOIN["guarded"]` and `JOIN["hedged"]` is active under the default mode or either of
those, dormant when the mode picks the entry that keeps the model's loss."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from auditors import audit_path
from auditors.table_gets import as_subscripts

FIXTURE = Path(__file__).parent / "fixtures" / "oracle_gate_lambda_table.py"


@pytest.mark.parametrize("env, reach", [({}, "active"), ({"COMBINE_MODE": "hedged"}, "active"),
                                        ({"COMBINE_MODE": "model"}, "dormant")])
def test_the_gate_in_a_combiner_table_takes_the_reach_of_its_keys(tmp_path, monkeypatch, env, reach):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    found = [f.reach for f in audit_path(FIXTURE, env=env).findings if f.rule == "oracle-gate"]
    assert found == [reach, reach]


def test_a_get_with_an_entry_as_fallback_is_read_as_a_subscript_and_others_are_left():
    source = (
        "T = {'a': f, 'b': g}\n"
        "U = {'a': f, 'b': 3}\n"
        "x = T.get(k, T['a'])\n"
        "y = T.get(k, g)\n"
        "z = T.get(k, h)\n"
        "w = U.get(k, f)\n"
        "v = T.get(k)\n")
    tree = as_subscripts(ast.parse(source))
    assert [ast.unparse(st.value) for st in tree.body[2:]] == ["T[k]", "T[k]", "T.get(k, h)", "U.get(k, f)", "T.get(k)"]
