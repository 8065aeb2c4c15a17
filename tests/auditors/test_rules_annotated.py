"""Semgrep-style fixtures: `# ruleid: R` above a line that must be flagged by rule R,
`# ok: R` above a line that must not be. Every annotation is checked, and every
finding in a fixture must be expected by an annotation."""

from __future__ import annotations

import base64
import lzma
import re
from pathlib import Path

import pytest

from auditors import audit_path

FIXTURES = Path(__file__).parent / "fixtures"
ANNOT = re.compile(r"#\s*(ruleid|ok):\s*([\w-]+)")


def annotations(text: str):
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = ANNOT.search(line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or ANNOT.search(lines[j])):
            j += 1
        out.append((m.group(1), m.group(2), j + 1))
    return out


def check_fixture(path: Path, text: str, findings) -> None:
    ann = annotations(text)
    assert ann, f"{path} has no annotations"
    got = {(f.rule, f.line) for f in findings}
    for kind, rule, line in ann:
        if kind == "ruleid":
            assert (rule, line) in got, f"{path.name}:{line} expected {rule}; got {sorted(got)}"
        else:
            assert (rule, line) not in got, f"{path.name}:{line} must not be flagged by {rule}"
    expected = {(r, l) for k, r, l in ann if k == "ruleid"}
    unexpected = {g for g in got if g not in expected}
    assert not unexpected, f"{path.name}: unexpected findings {sorted(unexpected)}"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_fixture_annotations(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    path = FIXTURES / name
    report = audit_path(path)
    check_fixture(path, path.read_text(), report.findings)


def test_packed_code_is_unpacked_and_lines_point_into_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    source = (FIXTURES / "ngram_cache.py").read_text()
    blob = base64.b85encode(lzma.compress(source.encode(), format=lzma.FORMAT_RAW,
                                          filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    inner = f'import lzma as L, base64 as B\nexec(L.decompress(B.b85decode("{blob}"), format=L.FORMAT_RAW, filters=[{{"id": L.FILTER_LZMA2}}]))\n'
    # two layers: a wrapper that zlib+base64-packs the lzma-packed file
    import zlib
    outer = f'import zlib, base64\nexec(zlib.decompress(base64.b64decode({base64.b64encode(zlib.compress(inner.encode()))!r})))\n'
    (tmp_path / "train_gpt.py").write_text(outer)
    report = audit_path(tmp_path / "train_gpt.py")
    unpacked = [f for f in report.findings if f.path == "train_gpt.py[unpacked][unpacked]"]
    check_fixture(Path("train_gpt.py"), source, unpacked)
    assert {f.rule for f in unpacked} == {"target-keyed-cache", "target-keyed-blend"}


def test_lzma_filters_held_in_a_module_name_are_read(tmp_path, monkeypatch):
    """`_f = [{"id": L.FILTER_LZMA2, "preset": 9 | L.PRESET_EXTREME}]`, then
    `L.decompress(..., format=L.FORMAT_RAW, filters=_f)`: the raw stream is unpacked."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    source = (FIXTURES / "ngram_cache.py").read_text()
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    blob = base64.b64encode(lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=filters)).decode()
    packed = ('import lzma as L, base64 as B\n_f = [{"id": L.FILTER_LZMA2, "preset": 9 | L.PRESET_EXTREME}]\n'
              f'exec(compile(L.decompress(B.b64decode("{blob}"), format=L.FORMAT_RAW, filters=_f), "t.py", "exec"))\n')
    (tmp_path / "train_gpt.py").write_text(packed)
    unpacked = [f for f in audit_path(tmp_path / "train_gpt.py").findings if f.path == "train_gpt.py[unpacked]"]
    check_fixture(Path("train_gpt.py"), source, unpacked)


def test_dormant_behind_disabled_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "cache"))
    src = (FIXTURES / "ngram_cache.py").read_text() + "\n\ngated_eval(None, None, None, None)\n"
    (tmp_path / "sub.py").write_text(src)
    line = src.splitlines().index("    f = full_t[fk].astype(np.float64)") + 1  # the read in score_aliased
    blend = src.splitlines().index("    return -np.log(0.5 * np.exp(-nll.numpy()) + 0.5 * p_ng)") + 1  # its mixture
    default = {f.line: f for f in audit_path(tmp_path / "sub.py").findings}
    assert default[line].reach == "dormant" and "NGRAM_EVAL" in default[line].condition
    assert default[blend].reach == "dormant" and "NGRAM_EVAL" in default[blend].condition
    others = [f for ln, f in default.items() if ln not in (line, blend)]
    assert others and all(f.reach == "dormant" and "never called" in f.condition for f in others)
    enabled = {f.line: f for f in audit_path(tmp_path / "sub.py", env={"NGRAM_EVAL": "1"}).findings}
    assert enabled[line].reach == "active" and enabled[line].condition is None
