"""The model: parameter counts of the published configurations, BigramHash test
vectors (PR940_SPEC s.3.5), and causality with every component on and each one off."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_model.config import ModelConfig, load_preset
from reference_model.layers import bigram_hash
from reference_model.model import GPT, count_parameters
from tests.model.helpers import randomize, tiny_config

ALL_ON = dict(smear_zero_at_bos=True, flow_refiner=True)
SWITCH_OFF = {
    "tied_embeddings": dict(tie_embeddings=False),
    "bigram": dict(bigram_buckets=0),
    "smear": dict(smear_gate=False),
    "smear_across_bos": dict(smear_zero_at_bos=False),
    "ln_scale": dict(ln_scale=False),
    "unet_skips": dict(unet_skips=False),
    "qk_norm": dict(qk_norm=False),
    "q_gain": dict(q_gain=False),
    "full_rope": dict(rope_dims=8, rope_ntk=False),
    "gated_attention": dict(gated_attention=False),
    "xsa": dict(xsa_last_n=0),
    "value_residual": dict(value_residual=False),
    "relu2": dict(mlp_activation="relu2"),
    "softcap": dict(logit_softcap=0.0),
    "flow_refiner": dict(flow_refiner=False),
}


def test_full_config_has_the_published_parameter_count():
    with torch.device("meta"):
        model = GPT(ModelConfig())
    assert count_parameters(model) == 27_137_223
    with torch.device("meta"):
        flow = GPT(ModelConfig(flow_refiner=True))
    assert count_parameters(flow) == 27_235_848


def test_preset_files_build_the_published_models():
    for path, expected in (("submissions/pr940/full.toml", 27_137_223), ("submissions/baseline/full.toml", 17_059_912)):
        with torch.device("meta"):
            model = GPT(load_preset(path).model)
        assert count_parameters(model) == expected, path


@pytest.mark.parametrize("prev,cur,bucket", [(1, 2, 412), (2, 3, 3580), (3, 1023, 3074), (1023, 1023, 476), (0, 5, 1385)])
def test_bigram_hash_vectors(prev, cur, bucket):
    assert bigram_hash(torch.tensor([[prev, cur]]), 4096).tolist() == [[4095, bucket]]


def test_rope_base_is_ntk_scaled_above_the_train_length():
    rotary = GPT(tiny_config(rope_dims=16, model_dim=64, num_heads=4)).blocks[0].attn.rotary
    assert rotary.effective_base(1024) == 10000.0
    assert rotary.effective_base(2048) == pytest.approx(22081.79, abs=0.01)


@pytest.mark.parametrize("variant", ["all_on", "all_off", *SWITCH_OFF])
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_model_is_causal(variant, data):
    if variant == "all_off":
        changes = {k: v for off in SWITCH_OFF.values() for k, v in off.items()}
    else:
        changes = dict(ALL_ON, **SWITCH_OFF.get(variant, {}))
    torch.manual_seed(0)
    model = randomize(GPT(tiny_config(**changes)), seed=data.draw(st.integers(0, 1000))).eval()
    T = data.draw(st.integers(2, 24), label="T")
    cut = data.draw(st.integers(1, T - 1), label="cut")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 1024, (2, T), generator=g)
    ids[ids % 5 == 0] = 1  # BOS tokens inside the rows (SmearGate's BOS rule)
    changed = ids.clone()
    changed[:, cut:] = torch.randint(0, 1024, (2, T - cut), generator=g)
    changed[:, cut] = (ids[:, cut] + 1) % 1024  # the first changed position always differs
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :cut], b[:, :cut], atol=1e-5, rtol=0)
    assert not torch.allclose(a[:, cut:], b[:, cut:], atol=1e-5, rtol=0)  # the test can see a change


def test_loss_is_cross_entropy_of_the_logits():
    model = randomize(GPT(tiny_config())).eval()
    ids, tgt = torch.randint(0, 1024, (2, 8)), torch.randint(0, 1024, (2, 8))
    with torch.no_grad():
        logits = model(ids)
        expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 1024), tgt.reshape(-1))
        assert torch.allclose(model(ids, tgt), expected)
    assert logits.abs().max() <= 30.0  # softcap


def test_bf16_autocast_keeps_every_component_working():
    """The full preset trains under bf16 autocast (CUDA); CPU autocast runs the same
    mixed-precision code paths, so a dtype mismatch in any component shows here."""
    model = randomize(GPT(tiny_config(**ALL_ON)), std=0.1)
    ids, tgt = torch.randint(0, 1024, (2, 16)), torch.randint(0, 1024, (2, 16))
    fp32 = model(ids, tgt)
    fp32.backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}  # layer 0 has no value residual
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model(ids, tgt)
    bf16.backward()
    assert torch.isfinite(bf16) and abs(float(bf16) - float(fp32)) < 0.05 * float(fp32)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == trained and all(torch.isfinite(g).all() for g in grads.values())
