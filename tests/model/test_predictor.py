"""The reference predictor behind the submission contract: score() is pure and causal;
observe() is the only thing that changes predictions, and only after it is called."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from reference_model.artifact import encode_artifact
from reference_model.config import QuantConfig, TTTConfig
from reference_model.model import GPT
from reference_model.predictor import load
from tests.model.helpers import randomize, tiny_config

TTT = TTTConfig(seq_len=16, lr=0.05, momentum=0.9, epochs=2, batch_seqs=4, freeze_blocks=1, total_chunks=4)


def _artifact(tmp_path: Path) -> Path:
    path = tmp_path / "artifact.ptz"
    path.write_bytes(encode_artifact(randomize(GPT(tiny_config()), std=0.2), QuantConfig(passthrough_max_numel=256)))
    return path


def _state(predictor):
    return {k: v.clone() for k, v in predictor.model.state_dict().items()}


def test_score_is_pure_and_causal(tmp_path):
    predictor = load(str(_artifact(tmp_path)), "cpu", TTT)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 1024, (3, 20), generator=g)
    before = _state(predictor)
    first = predictor.score(tokens, 20)
    assert first.dtype == torch.float32 and first.shape == (3, 20, 1024)
    assert torch.equal(predictor.score(tokens, 20), first)
    assert all(torch.equal(v, before[k]) for k, v in predictor.model.state_dict().items())
    assert torch.equal(predictor.score(tokens, 5), first[:, -5:])
    for cut in (1, 7, 19):
        changed = tokens.clone()
        changed[:, cut:] = torch.randint(0, 1024, (3, 20 - cut), generator=g)
        out = predictor.score(changed, 20)
        assert torch.allclose(out[:, :cut], first[:, :cut], atol=1e-5, rtol=0)


def test_observe_changes_predictions_only_after_it_is_called(tmp_path):
    predictor = load(str(_artifact(tmp_path)), "cpu", TTT)
    g = torch.Generator().manual_seed(2)
    probe = torch.randint(0, 1024, (2, 16), generator=g)
    base = predictor.score(probe, 16)
    predictor.observe(torch.randint(0, 1024, (10,), generator=g))  # shorter than one TTT sequence: no training
    assert torch.equal(predictor.score(probe, 16), base)
    frozen = predictor.model.blocks[0].attn.c_q.weight.clone()
    predictor.observe(torch.randint(0, 1024, (70,), generator=g))  # 4 sequences of 16 (+ the carried token)
    adapted = predictor.score(probe, 16)
    assert not torch.allclose(adapted, base)
    assert torch.equal(predictor.model.blocks[0].attn.c_q.weight, frozen)  # first blocks frozen
    assert not predictor.model.training  # back in eval mode
    assert torch.equal(predictor.score(probe, 16), adapted)


def test_lr_schedule_warms_up_then_decays():
    predictor_cls = load.__globals__["ReferencePredictor"]
    p = predictor_cls(GPT(tiny_config()), "cpu", TTTConfig(total_chunks=1893))
    assert p.lr_multiplier(0) == 1 / 94 and p.lr_multiplier(93) == 1.0
    assert p.lr_multiplier(94) == 1.0 and abs(p.lr_multiplier(1892)) < 1e-12
    assert p.lr_multiplier(500) > p.lr_multiplier(1000)


def test_submission_predictors_load_the_artifact(tmp_path):
    artifact = _artifact(tmp_path)
    for name, ttt in (("pr940", True), ("baseline", False)):
        spec = importlib.util.spec_from_file_location(f"sub_{name}", Path("submissions") / name / "predictor.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        predictor = module.load(str(artifact), "cpu")
        assert (predictor.optimizer is not None) == ttt
        assert predictor.score(torch.zeros(1, 4, dtype=torch.long), 1).shape == (1, 1, 1024)


def test_preset_ttt_settings_travel_in_the_artifact(tmp_path):
    """A preset's [ttt] table is stored in the artifact and used unless the caller insists."""
    from reference_model.artifact import load_artifact_with_ttt

    stored = TTTConfig(seq_len=16, epochs=1, lr=0.01, total_chunks=3)
    path = tmp_path / "a.ptz"
    path.write_bytes(encode_artifact(GPT(tiny_config()), QuantConfig(passthrough_max_numel=256), ttt=stored))
    assert load_artifact_with_ttt(path)[1] == stored
    assert load(str(path), "cpu", default_ttt=TTTConfig(epochs=7)).ttt == stored
    assert load(str(path), "cpu", ttt=TTTConfig(enabled=False)).ttt.enabled is False


def test_ttt_trains_after_scoring_under_no_grad(tmp_path):
    """Scoring first (as the worker does, under no_grad) must not break observe()'s backward."""
    path = tmp_path / "a.ptz"
    path.write_bytes(encode_artifact(randomize(GPT(tiny_config()), std=0.2), QuantConfig(passthrough_max_numel=256)))
    p = load(str(path), "cpu", ttt=TTTConfig(seq_len=32, epochs=1, batch_seqs=2, total_chunks=2, freeze_blocks=0))
    tokens = torch.randint(0, tiny_config().vocab_size, (2, 32))
    with torch.no_grad():
        before = p.score(tokens, 8)  # same window length as TTT's sequences: shared RoPE cache
    p.observe(torch.randint(0, tiny_config().vocab_size, (65,)))
    assert not torch.equal(before, p.score(tokens, 8))


def test_smoke_preset_ttt_survives_the_trainer_config_round_trip():
    """The trainer rebuilds the preset from config.json; the [ttt] table must survive it."""
    import json

    from reference_model.config import load_preset, preset_from_tables, to_dict

    preset = load_preset(Path(__file__).resolve().parents[2] / "submissions" / "pr940" / "smoke.toml")
    assert preset.ttt is not None and preset.ttt.total_chunks < TTTConfig().total_chunks
    assert preset_from_tables(json.loads(json.dumps(to_dict(preset))), "config").ttt == preset.ttt
