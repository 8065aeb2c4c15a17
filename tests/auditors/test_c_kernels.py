"""Target-gated hints in C kernels (RULES.md §3): annotated fixtures, independence from
names and layout, and the audit's report."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors import audit_path
from auditors.c_kernels import scan, tokenize

FIXTURE = Path(__file__).parent / "c_fixtures" / "gated_hints.c"
KEYWORDS = {"const", "uint16_t", "uint8_t", "int64_t", "int32_t", "uint32_t", "uint64_t", "int", "bool", "double",
            "float", "void", "for", "if", "else", "auto", "static_cast", "include", "stdint", "h", "ULL", "logf"}


ANNOT = re.compile(r"//\s*(ruleid|ok):\s*c-target-gated-hint")


def expected(text: str) -> tuple[set[int], set[int]]:
    """Lines under `// ruleid:` (must be flagged) and `// ok:` (must not be)."""
    lines = text.splitlines()
    want, never = set(), set()
    for i, line in enumerate(lines):
        m = ANNOT.search(line)
        if m:
            (want if m.group(1) == "ruleid" else never).add(i + 2)
    return want, never


def test_fixture_annotations():
    text = FIXTURE.read_text()
    want, never = expected(text)
    got = {line for line, _, _ in scan(text)}
    assert got == want and not got & never


def test_message_names_the_store_and_the_token():
    hits = {line: (store, why) for line, store, why in scan(FIXTURE.read_text())}
    store, why = hits[min(hits)]
    assert store == "hint_tok[i]" and "`starts_word`" in why and "tok = tokens[i]" in why


def _identifiers(text: str) -> list[str]:
    return sorted({t for t, _ in tokenize(text) if re.fullmatch(r"[A-Za-z_]\w*", t)} - KEYWORDS)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_names_and_layout_do_not_matter(data):
    """Renaming every variable and function and reflowing whitespace keeps every verdict."""
    text = FIXTURE.read_text()
    names = _identifiers(text)
    prefix = data.draw(st.from_regex(r"[a-z]{1,3}_", fullmatch=True))
    order = data.draw(st.permutations(range(len(names))))
    mapping = {name: f"{prefix}{k}" for name, k in zip(names, order)}
    body = re.sub(r"[A-Za-z_]\w*", lambda m: mapping.get(m.group(), m.group()), text.split("\n", 1)[1])
    spaced = re.sub(r"\s*([;{}])\s*", lambda m: m.group(1) + data.draw(st.sampled_from(["", " ", "\n  "])), body)
    before = [store.split("[")[0] for _, store, _ in scan(text)]
    after = [store.split("[")[0] for _, store, _ in scan(spaced)]
    assert after == [mapping[s] for s in before]


def test_audit_reports_unknown_reach(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "kernel.c").write_text(FIXTURE.read_text())
    report = audit_path(tmp_path)
    found = [f for f in report.findings if f.rule == "c-target-gated-hint"]
    assert {f.line for f in found} == expected(FIXTURE.read_text())[0]
    assert all(f.reach == "unknown" and f.tag == "future_token_peek" and f.path == "kernel.c" for f in found)
    assert report.errors == []  # whether Python uses the hints is not visible in the kernel


def test_pathological_nesting_is_skipped_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "deep.c").write_text("void f(int *h, const int *t) { for (int i = 0; i < 9; i++) "
                                     + "{" * 5000 + "h[i] = t[i];" + "}" * 5000 + " }\n")
    (tmp_path / "kernel.c").write_text(FIXTURE.read_text())
    report = audit_path(tmp_path)
    assert {f.path for f in report.findings if f.rule == "c-target-gated-hint"} == {"kernel.c"}


def test_kernels_are_found_by_the_engines_folder_walk(tmp_path, monkeypatch):
    """Vendored trees the audit never reads (.venv, node_modules, dot-folders) hold no kernels of the submission."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    for folder in ("csrc", ".venv/include", "node_modules/x"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "kernel.cu").write_text(FIXTURE.read_text())
    paths = {f.path for f in audit_path(tmp_path).findings if f.rule == "c-target-gated-hint"}
    assert paths == {"csrc/kernel.cu"}
