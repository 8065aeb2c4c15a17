"""The optimizers of PR940_SPEC s.4: batched Newton-Schulz, Muon's update, EMA, schedule."""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_model.config import TrainConfig
from reference_model.optim import Muon, lr_multiplier, newton_schulz5, update_ema


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 48), cols=st.integers(1, 48), batch=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_a_stack_is_orthogonalised_matrix_by_matrix(rows, cols, batch, seed):
    g = torch.randn(batch, rows, cols, generator=torch.Generator().manual_seed(seed))
    g[0] *= 1000.0  # each matrix is normalised by its own norm, not the stack's
    stacked = newton_schulz5(g)
    # (bf16: batched and single matmuls accumulate in different orders, which five iterations
    # grow to a few units in the last place at magnitude 1, 2**-7 each; a stack normalised by
    # its own norm would leave matrices 1.. near zero, far outside this)
    for i in range(batch):
        torch.testing.assert_close(stacked[i], newton_schulz5(g[i]), atol=3 * 2**-7, rtol=0)


def test_newton_schulz_brings_singular_values_near_one():
    g = torch.randn(64, 192, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(newton_schulz5(g).float())
    assert s.min() > 0.5 and s.max() < 1.5, s


def reference_muon_step(p, grad, buf, lr, momentum, wd, steps):
    """One Muon update of one matrix, written out as the spec states it."""
    buf = momentum * buf + grad
    u = newton_schulz5(grad + momentum * buf, steps).float() * max(1.0, p.size(0) / p.size(1)) ** 0.5
    return p * (1 - lr * wd) - lr * u.to(torch.bfloat16).float(), buf


def test_muon_matches_the_per_matrix_update_for_mixed_shapes():
    gen = torch.Generator().manual_seed(1)
    shapes = [(32, 32), (16, 32), (96, 32), (32, 32), (32, 96), (16, 32), (32, 8)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    expected = [p.detach().clone() for p in params]
    bufs = [torch.zeros_like(p) for p in params]
    lr, momentum, wd, steps = 0.02, 0.95, 0.04, 5
    opt = Muon(params, lr=lr, momentum=momentum, backend_steps=steps, weight_decay=wd)
    for _ in range(3):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        for i, g in enumerate(grads):
            expected[i], bufs[i] = reference_muon_step(expected[i], g, bufs[i], lr, momentum, wd, steps)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, atol=1e-5, rtol=1e-5)


def test_ema_is_the_decayed_average_of_every_state_tensor():
    model = torch.nn.Linear(4, 3)
    ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    history = [{k: v.clone() for k, v in ema.items()}]
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        update_ema(ema, model, 0.9)
        history.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    for k in ema:
        want = history[0][k]
        for weights in history[1:]:
            want = 0.9 * want + 0.1 * weights[k]
        torch.testing.assert_close(ema[k], want)


def test_lr_is_constant_then_linear_to_zero():
    cfg = dataclasses.replace(TrainConfig(), iterations=100, warmdown_iters=40)
    assert [lr_multiplier(s, cfg) for s in (0, 59, 60, 80, 100)] == [1.0, 1.0, 1.0, 0.5, 0.0]
