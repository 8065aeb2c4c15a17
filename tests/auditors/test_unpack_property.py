"""Unpacking is a round trip: any chain of the supported encoders around any source,
executed with exec(), is decoded back to exactly that source (and nothing is run)."""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import zlib

import pytest
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


def _b85_lzma(text: str) -> str:
    return base64.b85encode(lzma.compress(text.encode())).decode()


INNER = "import torch\nloss = torch.zeros(1)\n"
RUNS = {  # ways to run a packed program that name no `exec(` of a decoder chain
    "module by __import__": "_l = __import__('lzma'); _b = __import__('base64')\nexec(_l.decompress(_b.b85decode(B)))",
    "module by import_module": "import importlib\nz = importlib.import_module('lzma')\nimport base64\n"
                               "exec(z.decompress(base64.b85decode(B)))",
    "aliased exec": "import builtins, lzma, base64\nrun = builtins.exec\nrun(lzma.decompress(base64.b85decode(B)))",
    "getattr exec": "import builtins, lzma, base64\nrun = getattr(builtins, 'exec')\nrun(lzma.decompress(base64.b85decode(B)))",
    "decode helper": "import lzma, base64\ndef unpack(s):\n    'decode'\n    return lzma.decompress(base64.b85decode(s)).decode()\n"
                     "code = compile(unpack(B), 'inner.py', 'exec')\nexec(code, globals())",
    "runner out of sight": "import lzma, base64\nsrc = lzma.decompress(base64.b85decode(B))\n"
                           "getattr(__builtins__, 'ex' + 'ec')(src)",
    "decoder alias": "import lzma, base64\nd = lzma.decompress\nf = base64.b85decode\nsrc = d(f(B))\n",
    "join of one string": "import lzma as L, base64 as Q\nexec(L.decompress(Q.b85decode(''.join(B))))",
}


@pytest.mark.parametrize("how", sorted(RUNS))
def test_a_packed_program_is_found_however_it_is_run(how):
    source = f"B = {_b85_lzma(INNER)!r}\n" + RUNS[how] + "\n"
    assert unpack_all("w.py", source) == [("w.py[unpacked]", INNER)]


@pytest.mark.parametrize("data", ['{"vocab": [1, 2, 3]}', "hello world", "token_bytes", "3.14159"])
def test_decoded_data_that_is_not_a_program_is_not_unpacked(data):
    source = f"import lzma, base64\nTABLE = lzma.decompress(base64.b85decode({_b85_lzma(data)!r}))\n"
    assert unpack_all("w.py", source) == []
    # the same bytes handed to exec are code, whatever they look like
    assert unpack_all("w.py", source + "exec(TABLE)\n") == [("w.py[unpacked]", data)]
