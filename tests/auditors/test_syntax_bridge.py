"""Syntax newer than the running Python (PEP 701 f-strings, PEP 695 type parameters) is
read through libcst and rewritten on the same lines, so the analysis audits those lines
instead of skipping them. Every program here is written for the test."""

from __future__ import annotations

import ast
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors import audit_path
from auditors.engine import parse_tolerant
from auditors.syntax_bridge import bridged

# (3.12 form with the f-string's own quotes nested, the same expression in 3.11 form)
EXPRESSIONS = [('", ".join(xs)', "', '.join(xs)"), ("d[\"k\"]", "d['k']"), ("n", "n"), ("n + 1", "n + 1"),
               ('f"{n}-{d["k"]}"', "f'{n}-{d[\"k\"]}'"), ("xs", "xs")]
SUFFIXES = ["", "!r", "!s", ":>7", "!r:^9", ":{w}"]
TEXT = st.text(alphabet=st.sampled_from("ab xyz=:;-_()[]{}\n"), max_size=6).map(
    lambda t: t.replace("{", "{{").replace("}", "}}"))


SCOPE = {"xs": ["p", "q"], "d": {"k": "v"}, "n": 3, "w": 6}
CONVERSIONS = {"": format, "!r": lambda v, spec: format(repr(v), spec), "!s": lambda v, spec: format(str(v), spec)}


@st.composite
def templates(draw):
    """An f-string body in the 3.12 form, and the string it makes (computed part by part)."""
    body, made = [], []
    for _ in range(draw(st.integers(1, 4))):
        text = draw(TEXT)
        expr_new, expr_old = draw(st.sampled_from(EXPRESSIONS))
        suffix = draw(st.sampled_from(SUFFIXES))
        if expr_new == "xs" and ":" in suffix:
            suffix = ""  # (a list takes no alignment)
        body.append(f"{text}{{{expr_new}{suffix}}}")
        conversion, _, spec = suffix.partition(":")
        value = eval(expr_old, {}, dict(SCOPE))
        made.append(text.replace("{{", "{").replace("}}", "}") + CONVERSIONS[conversion](value, spec.replace("{w}", "6")))
    return "".join(body), "".join(made)


@settings(max_examples=80, deadline=None)
@given(body=templates(), after=st.integers(0, 3))
def test_a_rewritten_f_string_makes_the_same_string_on_the_same_lines(body, after):
    new, expected = body
    quotes = '"""' if "\n" in new else '"'
    source = f"s = f{quotes}{new}{quotes}\n" + "".join(f"line_{i} = {i}\n" for i in range(after))
    out = bridged(source)
    if out is None:  # nothing this Python cannot read
        out = source
    assert out.count("\n") == source.count("\n")
    scope = dict(SCOPE)
    exec(compile(out, "<bridged>", "exec"), scope)
    assert scope["s"] == expected
    tree = ast.parse(out)
    assert [st.lineno for st in tree.body[1:]] == [source.count("\n") - after + 1 + i for i in range(after)]


def test_code_this_python_reads_is_left_as_it_is():
    source = 'a = f"{x!r:>5} {y}"\nb = "c" f"{d}"\n'
    assert bridged(source) is None
    tree, skipped = parse_tolerant(source)
    assert tree is not None and skipped == []


def test_type_parameters_and_aliases_are_dropped_on_their_lines():
    source = "type Pair = tuple[int, int]\n\ndef first[T](xs: list[T]) -> T:\n    return xs[0]\n\nclass Box[T]:\n    pass\n"
    out = bridged(source)
    tree = ast.parse(out)
    assert [type(n).__name__ for n in tree.body] == ["Assign", "FunctionDef", "ClassDef"]
    assert [n.lineno for n in tree.body] == [1, 3, 6]


GOLFED = '''
import os, numpy as np, torch, torch.nn.functional as F
def log(s): print(s)
def main(model):
    val=torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin",dtype=np.uint16).astype(np.int64));opt=torch.optim.SGD(model.parameters(),lr=1e-3)
    for c in range(len(val)//1024):
        x=val[c*1024:(c+1)*1024+1];F.cross_entropy(model(x[None,:-1])[0],x[1:]).backward();opt.step();log(f"chunk {c}: {", ".join(str(p.numel()) for p in model.parameters())}")
    return F.cross_entropy(model(val[None,:-1])[0],val[1:]).item()
main(torch.nn.Identity())
'''


def test_a_cheat_on_a_line_with_newer_syntax_is_found_where_it_is(tmp_path, monkeypatch):
    """Training on each chunk before the final score, on a golfed line that also holds a
    PEP 701 f-string: found on that line (it used to be skipped as unparsable)."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    p = tmp_path / "train_gpt.py"
    p.write_text(GOLFED.lstrip("\n"))
    report = audit_path(p)
    assert [f.line for f in report.findings if f.rule == "unparsable-code"] == []
    assert ("ttt-before-score", 6) in {(f.rule, f.line) for f in report.errors}


def test_a_line_libcst_refuses_in_the_whole_file_is_bridged_alone():
    """libcst rejects some files CPython accepts (`(a if x else b)if y else c`); the failing line is then
    rewritten on its own, and only a line neither can read is skipped."""
    source = textwrap.dedent('''
        a = (b if c else d)if e else f
        print(f"{", ".join(["p", "q"])}")
        b = f"{1 if a else '2}"
        c = 3
    ''').lstrip("\n")
    tree, skipped = parse_tolerant(source)
    assert skipped == [3]
    assert [n.lineno for n in tree.body] == [1, 2, 3, 4]
    assert type(tree.body[1].value) is ast.Call
