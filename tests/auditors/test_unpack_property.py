"""Unpacking is a round trip: any chain of the supported encoders around any source,
executed with exec(), is decoded back to exactly that source (and nothing is run)."""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from auditors.unpack import unpack_all

# (encoder applied when packing, the decoding expression that undoes it)
CODECS = {
    "lzma": (lzma.compress, "lzma.decompress({})"),
    "zlib": (zlib.compress, "zlib.decompress({})"),
    "gzip": (gzip.compress, "gzip.decompress({})"),
    "bz2": (bz2.compress, "bz2.decompress({})"),
    "b64": (base64.b64encode, "base64.b64decode({})"),
    "b85": (base64.b85encode, "base64.b85decode({})"),
    "a85": (base64.a85encode, "base64.a85decode({})"),
}


def pack(source: str, chain: list[str]) -> str:
    data = source.encode()
    for name in chain:
        data = CODECS[name][0](data)
    # decoding applies the last encoder first: build the expression inside out
    inner = repr(data)
    for name in reversed(chain):
        inner = CODECS[name][1].format(inner)
    return f"import base64, bz2, gzip, lzma, zlib\nexec({inner})\n"


@settings(max_examples=40, deadline=None)
@given(body=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
       chain=st.lists(st.sampled_from(sorted(CODECS)), min_size=1, max_size=4))
def test_any_encoder_chain_round_trips(body, chain):
    source = f"x = {body!r}\n"
    layers = unpack_all("f.py", pack(source, chain))
    assert layers == [("f.py[unpacked]", source)]


@settings(max_examples=20, deadline=None)
@given(chain=st.lists(st.sampled_from(sorted(CODECS)), min_size=1, max_size=3))
def test_nested_packing_is_followed(chain):
    inner = "y = 1\n"
    outer = pack(pack(inner, chain), chain)
    names = [n for n, _ in unpack_all("t.py", outer)]
    assert names == ["t.py[unpacked]", "t.py[unpacked][unpacked]"]
    assert unpack_all("t.py", outer)[-1][1] == inner


def test_non_literal_argument_is_not_evaluated():
    source = "import lzma, os\nexec(lzma.decompress(open(os.environ['P'], 'rb').read()))\n"
    assert unpack_all("w.py", source) == []


@settings(max_examples=10, deadline=None)
@given(chains=st.lists(st.lists(st.sampled_from(sorted(CODECS)), min_size=1, max_size=2), min_size=1, max_size=3),
       depth=st.integers(1, 6))
def test_the_engine_finds_the_same_layers_in_the_same_order(chains, depth):
    """The audit's workers unpack from the trees they parse; the layers, their names and
    their order (each file, then its layers depth first) are those of unpack_all."""
    from auditors.engine import analyze_units

    nested = "z = 3\n"
    for _ in range(depth):  # deeper than MAX_DEPTH: the cut must be the same
        nested = pack(nested, chains[0])
    blobs = [pack(f"v = {i}\n", chain) for i, chain in enumerate(chains)]
    two = blobs[0].rstrip("\n") + "\n" + "\n".join(b.splitlines()[1] for b in blobs[1:]) + "\n"
    items = [("a.py", nested), ("b.py", two), ("c.py", "print(1)\n")]
    units, facts = analyze_units(items, use_cache=False)
    expected = [u for name, source in items for u in [(name, source)] + unpack_all(name, source)]
    assert units == expected
    assert len(facts) == len(units) and all(f["parse_error"] is None for f in facts)


def test_a_line_python_cannot_parse_does_not_hide_the_payload():
    from auditors.engine import analyze_units

    source = pack("w = 1\n", ["lzma", "b85"]) + "x = f'{'a' 'b'}' if NEWER_SYNTAX else match := 1\n"
    units, facts = analyze_units([("p.py", source)], use_cache=False)
    assert [name for name, _ in units] == ["p.py", "p.py[unpacked]"]
    assert units[1][1] == "w = 1\n"
    assert any(f["rule"] == "unparsable-code" for f in facts[0]["findings"])


def test_a_payload_too_large_to_audit_is_an_error_not_a_silent_skip():
    import zlib as _z

    from auditors.engine import analyze_units
    from auditors.unpack import MAX_OUTPUT

    blob = base64.b64encode(_z.compress(b"x = 1\n" * (MAX_OUTPUT // 6 + 10))).decode()
    source = f"import base64, zlib\nexec(zlib.decompress(base64.b64decode('{blob}')))\n"
    units, facts = analyze_units([("bomb.py", source)], use_cache=False)
    assert [name for name, _ in units] == ["bomb.py"]  # nothing decoded past the cap
    assert [(f["rule"], f["severity"], f["line"]) for f in facts[0]["findings"]] == [("unparsable-code", "error", 2)]
