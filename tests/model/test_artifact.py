"""Artifact and container: byte round trips, per-row quantization error bounds,
bad files rejected with BadInput naming the file, int5 fallback, size accounting."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import BadInput
from reference_model.artifact import (build_artifact, decode_artifact, encode_artifact, int5_order, load_artifact,
                                      quantize_rows, quantize_rows_int8, quantize_state)
from reference_model.config import QuantConfig
from reference_model.container import DTYPES, MAGIC, decode_container, encode_container, read_container
from reference_model.model import GPT
from tests.model.helpers import randomize, tiny_config

SMALL_QUANT = QuantConfig(passthrough_max_numel=256)


@st.composite
def tensor_dicts(draw):
    out = {}
    for i in range(draw(st.integers(0, 4))):
        dtype = draw(st.sampled_from(sorted(DTYPES)))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        seed = draw(st.integers(0, 1000))
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(shape, generator=g) * 100
        out[f"t{i}.{dtype}"] = t > 0 if dtype == "bool" else t.to(DTYPES[dtype][0])
    return out


@settings(max_examples=40, deadline=None)
@given(tensors=tensor_dicts(), meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_container_round_trip(tensors, meta):
    back, meta_back = decode_container(encode_container(tensors, meta, level=1))
    assert meta_back == meta and list(back) == list(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
        assert torch.equal(back[name], t)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 40), scale=st.floats(1e-3, 50), seed=st.integers(0, 999),
       qmax=st.sampled_from([31, 15]))
def test_intn_error_is_at_most_half_a_step_per_row(rows, cols, scale, seed, qmax):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * scale
    q, s = quantize_rows(w, qmax)
    assert q.dtype == torch.int8 and int(q.min()) >= -qmax - 1 and int(q.max()) <= qmax
    err = (q.float() * s.float()[:, None] - w).abs().amax(dim=1)
    assert torch.all(err <= 0.5 * s.float() * 1.01 + 1e-7)


def test_int8_error_is_bounded_inside_the_clip():
    w = torch.randn(16, 300, generator=torch.Generator().manual_seed(3))
    q, s = quantize_rows_int8(w)
    clip = torch.quantile(w.abs(), 0.9999984, dim=1)
    inside = w.abs() <= clip[:, None]
    err = (q.float() * s.float()[:, None] - w).abs()
    # Rounding uses the fp32 scale, the file keeps it fp16: half a step plus 127 x that difference.
    s32 = torch.clamp(clip / 127, min=1 / 127)
    bound = 0.5 * s32 + 127 * (s32 - s.float()).abs() + 1e-6
    assert torch.all(err[inside] <= bound[:, None].expand_as(err)[inside])


def test_categories_choose_the_formats():
    model = randomize(GPT(tiny_config()))
    _, kinds = quantize_state(model.state_dict(), SMALL_QUANT)
    assert kinds["tok_emb.weight"]["kind"] == "int8"
    assert kinds["bigram.embed.weight"]["kind"] == "int8"
    assert kinds["blocks.0.mlp.fc.weight"]["kind"] == "int6"
    assert kinds["blocks.1.attn.c_q.weight"]["kind"] == "int6"
    assert kinds["blocks.0.attn.q_gain"]["kind"] == "fp16"
    _, kinds5 = quantize_state(model.state_dict(), SMALL_QUANT, int5_layers=[1])
    assert kinds5["blocks.1.attn.c_q.weight"]["kind"] == "int5" and kinds5["blocks.0.attn.c_q.weight"]["kind"] == "int6"


def test_artifact_round_trip_gives_the_dequantized_model(tmp_path):
    model = randomize(GPT(tiny_config())).eval()
    blob = encode_artifact(model, SMALL_QUANT)
    path = tmp_path / "a.ptz"
    path.write_bytes(blob)
    loaded = load_artifact(path)
    tensors, kinds = quantize_state(model.state_dict(), SMALL_QUANT)
    for name, t in loaded.state_dict().items():
        kind = kinds[name]["kind"]
        if kind == "fp16":
            assert torch.equal(t, model.state_dict()[name].half().float())
        else:
            expected = tensors[name + ".q"].float() * tensors[name + ".scale"].float()[:, None]
            assert torch.equal(t, expected)
    ids = torch.randint(0, 1024, (2, 12))
    with torch.no_grad():
        assert torch.allclose(loaded(ids), decode_artifact(blob)(ids))
        assert (loaded(ids) - model(ids)).abs().max() < 5.0  # close to the float model, not equal


def test_int5_fallback_order_and_budget():
    assert int5_order(11) == [5, 6, 4, 7, 3, 8, 2, 9, 1, 10, 0]
    model = randomize(GPT(tiny_config()))
    roomy = build_artifact(model, SMALL_QUANT, code_bytes=1000)
    assert roomy.fits and roomy.int5_layers == [] and roomy.total_bytes == roomy.model_bytes + 1000
    tight_limit = roomy.model_bytes + 1000 - 1
    tight = build_artifact(model, QuantConfig(passthrough_max_numel=256, size_limit=tight_limit), code_bytes=1000)
    if tight.fits:
        assert tight.int5_layers and tight.int5_layers == int5_order(3)[: len(tight.int5_layers)] or tight.zstd_level != 16
        assert tight.total_bytes <= tight_limit
    impossible = build_artifact(model, QuantConfig(passthrough_max_numel=256, size_limit=10), code_bytes=0)
    assert not impossible.fits and impossible.int5_layers == int5_order(3)


@pytest.mark.parametrize("damage", ["truncate", "magic", "version", "bomb", "flip", "header", "shape"])
def test_damaged_artifacts_raise_bad_input_naming_the_file(tmp_path, damage):
    model = randomize(GPT(tiny_config()))
    blob = bytearray(encode_artifact(model, SMALL_QUANT))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "magic":
        blob[:8] = b"NOTMAGIC"
    elif damage == "version":
        blob[8:12] = struct.pack("<I", 99)
    elif damage == "bomb":  # declares 1 KB, decompresses to 100 MB
        blob = bytearray(MAGIC + struct.pack("<IQ", 1, 1024) + zstandard.ZstdCompressor().compress(bytes(100_000_000)))
    elif damage == "flip":
        blob[40] ^= 0xFF
    elif damage in ("header", "shape"):
        tensors, meta = decode_container(bytes(blob))
        if damage == "header":
            del meta["model_config"]
        else:
            tensors["blocks.0.mlp.fc.weight.q"] = tensors["blocks.0.mlp.fc.weight.q"][:, :-1].contiguous()
        blob = bytearray(encode_container(tensors, meta))
    path = tmp_path / "bad.ptz"
    path.write_bytes(bytes(blob))
    with pytest.raises(BadInput, match="bad.ptz"):
        load_artifact(path)


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="nope.ptz"):
        read_container(tmp_path / "nope.ptz")


def test_bytes_are_little_endian():
    blob = encode_container({"x": torch.tensor([1, 256], dtype=torch.int16)}, {}, level=1)
    payload = zstandard.ZstdDecompressor().decompress(blob[20:], max_output_size=1 << 20)
    assert payload.endswith(np.array([1, 256], dtype="<i2").tobytes())
