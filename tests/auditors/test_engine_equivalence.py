"""The auditor's shortcuts answer exactly what the plain computation answers.

Speed-ups in the engine skip work they can prove unneeded: a fixpoint run that would
repeat itself, a walk of a function whose nodes the module walk already holds. Each
test here computes the
same thing both ways, on the repository's own code and the rule fixtures.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from auditors import flow
from auditors.analysis import ModuleFlow
from auditors.engine import analyze_source
from auditors.labels import UNINDEXED, index_nodes, walk
from auditors.loop_shapes import innermost_statements

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("tests/auditors/fixtures/*.py")) + sorted(ROOT.glob("auditors/**/*.py"))
KINDS = (ast.BinOp, ast.If, ast.Compare, ast.AugAssign, ast.Call, ast.Assign, ast.Subscript)


def _trees():
    for p in SOURCES:
        source = p.read_text()
        yield source, ast.parse(source)


def _indexed_walk(node) -> list:
    """ast.walk without the nodes the index leaves out (names, constants, contexts, operators)."""
    return [n for n in ast.walk(node) if not isinstance(n, (*UNINDEXED, ast.expr_context, ast.operator, ast.unaryop,
                                                             ast.boolop, ast.cmpop))]


def test_index_nodes_is_ast_walk_without_the_leaves():
    for _, tree in _trees():
        nodes, by_type = index_nodes(tree)
        walked = _indexed_walk(tree)
        assert len(nodes) == len(walked) and all(a is b for a, b in zip(nodes, walked))
        for kind, found in by_type.items():
            assert found == [n for n in walked if type(n) is kind]


def test_walk_is_ast_walk():
    """The rules' walk yields ast.walk's nodes in its order, contexts and operators included,
    from a module and from every statement and expression in it."""
    subtrees = 0
    for _, tree in _trees():
        for root in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.stmt, ast.Call, ast.comprehension)))][::7]:
            mine, theirs = list(walk(root)), list(ast.walk(root))
            assert len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs))
            subtrees += 1
    assert subtrees > 1000


def testinnermost_statements_in_one_walk():
    """Each node maps to the innermost statement that holds it, as walking every
    statement's subtree in breadth-first order (inner ones overwrite) finds it. Contexts
    and operators are left out: one instance of each is shared by the whole tree."""
    shared = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
    checked = 0
    for _, tree in _trees():
        for f in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)][::5]:
            slow = {id(c): p for p in ast.walk(f) if isinstance(p, ast.stmt) for c in ast.walk(p) if not isinstance(c, shared)}
            fast = innermost_statements(f)
            assert all(fast[k] is v for k, v in slow.items())
            checked += len(slow)
    assert checked > 10_000


def test_unindexed_kinds_are_refused():
    source = "x = 1\n"
    m = ModuleFlow(source, ast.parse(source))
    for kind in UNINDEXED:
        with pytest.raises(ValueError, match="not indexed"):
            m.nodes_of(kind)


def test_nodes_under_a_function_are_its_walk():
    functions = 0
    for source, tree in _trees():
        m = ModuleFlow(source, tree)
        for f in m.functions.values():
            if f.qualname == "<module>":
                continue
            walked = _indexed_walk(f.node)
            assert f.nodes == walked
            for kind in KINDS:
                assert m.under(f, m.nodes_of(kind)) == [n for n in walked if type(n) is kind]
            functions += 1
    assert functions > 50


def test_skipped_fixpoint_runs_change_no_fact(monkeypatch):
    sources = [p.read_text() for p in SOURCES]
    fast = [analyze_source(s) for s in sources]
    start = flow.FuncInfo._start_run

    def never_clean(self):  # every run counts as having changed what it read: nothing is skipped
        start(self)
        self.clean = False

    monkeypatch.setattr(flow.FuncInfo, "_start_run", never_clean)
    assert [analyze_source(s) for s in sources] == fast
    assert any(f["findings"] for f in fast)  # the comparison covers real findings
