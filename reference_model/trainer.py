"""The training loop (PR940_SPEC s.4): one process, or one rank under torchrun.

`run_training(config)` reads the run configuration written by train.py
(out_dir/config.json), trains, writes metrics.jsonl / checkpoints / the artifact on
rank 0, and returns the result dict on rank 0 (None on other ranks).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from harness.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from harness.data.shards import DistributedTokenLoader, find_shards, load_val_tokens, read_shard
from harness.data.tokenizer import build_byte_tables, load_tokenizer
from harness.errors import BadInput

from .artifact import build_artifact, decode_artifact
from .checkpoint import (TrainState, capture_rng, list_checkpoints, load_checkpoint, restore_rng,
                         save_checkpoint)
from .config import preset_from_tables
from .evaluate import autocast, unigram_bpb, val_bpb
from .model import GPT, count_parameters
from .optim import apply_schedule, build_optimizers, update_ema

UNIGRAM_MAX_TRAIN_TOKENS = 200_000_000  # two FineWeb shards: plenty for 1024 counts


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput(f"--device {name}: CUDA is not available")
        return torch.device("cuda", local_rank if name == "cuda" else torch.device(name).index)
    return torch.device(name)


def skip_tokens(stream, n: int, chunk: int = 1 << 24) -> None:
    """Advance a TokenStream by n tokens (resume): the stream has no seek."""
    while n > 0:
        k = min(n, chunk)
        stream.take(k)
        n -= k


def average_gradients(model: torch.nn.Module, world_size: int) -> None:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def train_token_counts(files, vocab_size: int) -> np.ndarray:
    counts, seen = np.zeros(vocab_size, dtype=np.int64), 0
    for f in files:
        tokens = read_shard(f, vocab_size)[: UNIGRAM_MAX_TRAIN_TOKENS - seen]
        counts += np.bincount(tokens, minlength=vocab_size)
        seen += len(tokens)
        if seen >= UNIGRAM_MAX_TRAIN_TOKENS:
            break
    return counts


class MetricsLog:
    """metrics.jsonl on rank 0. On resume, lines after the checkpoint's step (and any
    line cut short by a kill) are dropped, so the file reads as one clean run."""

    def __init__(self, path: Path, enabled: bool, resume_step: int):
        self.path, self.enabled = path, enabled
        if enabled:
            kept = []
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if record.get("step", 0) <= resume_step:
                        kept.append(line + "\n")
            atomic_write_text(path, "".join(kept))

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def run_training(config: dict) -> dict | None:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(config["device"], int(os.environ.get("LOCAL_RANK", 0)))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, rank, world, device)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: dict, rank: int, world: int, device: torch.device) -> dict | None:
    preset = preset_from_tables(config["preset"], "config.json preset")
    mcfg, tcfg = preset.model, preset.train
    out = Path(config["out_dir"])
    if tcfg.grad_accum % world:
        raise BadInput(f"grad_accum {tcfg.grad_accum} is not divisible by --nproc {world}")
    accum = tcfg.grad_accum // world
    dataset, vocab = Path(config["dataset_dir"]), mcfg.vocab_size
    tables = build_byte_tables(load_tokenizer(config["tokenizer_path"]), vocab)
    val_tokens = load_val_tokens(dataset, tcfg.train_seq_len, vocab)
    periodic_val = val_tokens
    if tcfg.val_max_tokens:
        periodic_val = val_tokens[: (min(tcfg.val_max_tokens, len(val_tokens) - 1) // tcfg.train_seq_len) * tcfg.train_seq_len + 1]
    train_files = find_shards(dataset, "train")
    loader = DistributedTokenLoader(train_files, rank, world, vocab)

    torch.manual_seed(tcfg.seed)
    model = GPT(mcfg).to(device)
    optimizers = build_optimizers(model, tcfg)
    ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()} if tcfg.ema_enabled else None
    step, consumed = 0, 0
    checkpoints = list_checkpoints(out / "checkpoints")
    if checkpoints:
        state = load_checkpoint(checkpoints[-1])
        if state.preset != config["preset"]:
            raise BadInput(f"{checkpoints[-1]}: written with another configuration; use a fresh --out folder")
        model.load_state_dict(state.model)
        for opt, sd in zip(optimizers, state.optimizers):
            opt.load_state_dict(sd)
        if ema is not None:
            ema = {k: v.to(device) for k, v in state.ema.items()}
        restore_rng(state.rng, device)
        step, consumed = state.step, state.tokens_consumed
        skip_tokens(loader.stream, consumed)
    metrics = MetricsLog(out / "metrics.jsonl", rank == 0, step)
    # the full preset compiles for GPUs; on CPU inductor needs a C++ compiler, which the tests use
    forward = torch.compile(model) if tcfg.compile else model
    per_call = (tcfg.train_batch_tokens // (world * accum) + 1) * world

    def checkpoint() -> None:
        if rank == 0 and tcfg.checkpoint_every:
            state = TrainState(step, consumed, model.state_dict(), ema, [o.state_dict() for o in optimizers],
                               capture_rng(device), config["preset"])
            save_checkpoint(out / "checkpoints", state, tcfg.keep_checkpoints)

    def evaluate(m, tokens=periodic_val) -> float:
        return val_bpb(m, tokens, tables, tcfg.train_seq_len, tcfg.val_batch_seqs, device, rank, world)[0]

    bar = tqdm(total=tcfg.iterations, initial=step, disable=rank != 0, unit="step", dynamic_ncols=True)
    model.train()
    while step < tcfg.iterations:
        t0 = time.perf_counter()
        lr_mult = apply_schedule(optimizers, step, tcfg)
        loss_sum = torch.zeros((), device=device)
        for _ in range(accum):
            x, y = loader.next_batch(tcfg.train_batch_tokens, tcfg.train_seq_len, accum, device)
            with autocast(device):
                loss = forward(x, y)
            (loss / accum).backward()
            loss_sum += loss.detach() / accum
        consumed += per_call * accum
        if world > 1:
            average_gradients(model, world)
            dist.all_reduce(loss_sum)
            loss_sum /= world
        if tcfg.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip_norm)
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        if ema is not None:
            update_ema(ema, model, tcfg.ema_decay)
        train_loss = float(loss_sum)  # also waits for the device, so the timing is honest
        tokens_per_s = tcfg.train_batch_tokens / (time.perf_counter() - t0)
        step += 1
        record = {"step": step, "train_loss": round(train_loss, 6), "lr": lr_mult * tcfg.matrix_lr,
                  "tokens_per_s": round(tokens_per_s, 1)}
        if (tcfg.val_every and step % tcfg.val_every == 0) or step == tcfg.iterations:
            record["val_bpb"] = evaluate(model)
        if step % tcfg.log_every == 0 or "val_bpb" in record or step == 1:
            metrics.write(record)
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tokens_per_s:,.0f}",
                        **({"val_bpb": f"{record['val_bpb']:.3f}"} if "val_bpb" in record else {}))
        if (tcfg.checkpoint_every and step % tcfg.checkpoint_every == 0) or step == tcfg.iterations:
            checkpoint()
    bar.close()
    live_bpb = evaluate(model)  # the last periodic value, recomputed if resumed after the end
    if ema is not None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in ema.items()})
    final_bpb = evaluate(model, val_tokens)  # the whole val split, like the round trip
    result = None
    if rank == 0:
        result = _finish(config, preset, model, val_tokens, tables, train_files, live_bpb, final_bpb, device, step)
    if world > 1:
        dist.barrier()  # no rank tears the group down while rank 0 still writes the artifact
    return result


def _finish(config, preset, model, val_tokens, tables, train_files, live_bpb, final_bpb, device, step) -> dict:
    """Rank 0: quantize, write the artifact, score the round trip, compare with unigram."""
    art = build_artifact(model.cpu(), preset.quant, config["code_bytes"], preset.ttt)
    artifact_path = Path(config["artifact_path"])
    atomic_write_bytes(artifact_path, art.blob)
    roundtrip = decode_artifact(art.blob, str(artifact_path)).to(device)
    tcfg = preset.train
    roundtrip_bpb = val_bpb(roundtrip, val_tokens, tables, tcfg.train_seq_len, tcfg.val_batch_seqs, device)[0]
    unigram = unigram_bpb(train_token_counts(train_files, preset.model.vocab_size), val_tokens, tables)
    result = {
        "steps": step,
        "parameters": count_parameters(model),
        "val_bpb_live": live_bpb,  # live (non-EMA) weights, periodic val subset
        "val_bpb": final_bpb,  # final float weights (EMA when enabled), whole val split
        "val_bpb_roundtrip": roundtrip_bpb,
        "unigram_bpb": unigram,
        "ratio_to_unigram": roundtrip_bpb / unigram,
        "val_tokens": int(len(val_tokens) - 1),
        "artifact": str(artifact_path),
        "model_bytes": art.model_bytes,
        "code_bytes": art.code_bytes,
        "total_bytes": art.total_bytes,
        "size_limit": art.limit,
        "fits": art.fits,
        "zstd_level": art.zstd_level,
        "int5_layers": art.int5_layers,
    }
    atomic_write_json(Path(config["out_dir"]) / "result.json", result)
    return result
