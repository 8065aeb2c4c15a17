"""Training throughput (tokens/s) of the reference model's presets.

    python benchmarks/train_throughput.py [--steps N] [--warmup N] [--threads N] [--smoke-only]

Measures full optimizer steps (forward, backward, grad clip, Muon + AdamW, EMA) on
synthetic token batches of the preset's shape:
- the smoke preset on CPU (what `harness train --preset smoke` runs);
- the full preset on one GPU when CUDA is available (bf16 autocast, torch.compile as the
  preset says); without a GPU, the full model on CPU with a single 2048-token
  micro-batch, labelled as such, to show what one CPU step of the big model costs.
Prints one JSON line per measurement. Numbers depend on machine load: report it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from reference_model.config import load_preset
from reference_model.evaluate import autocast
from reference_model.model import GPT, count_parameters
from reference_model.optim import apply_schedule, build_optimizers


def measure(preset_path: str, device: torch.device, steps: int, warmup: int, micro_tokens: int | None = None) -> dict:
    preset = load_preset(preset_path)
    t = preset.train
    seq = t.train_seq_len
    micro = micro_tokens or t.train_batch_tokens // t.grad_accum
    accum = 1 if micro_tokens else t.grad_accum
    torch.manual_seed(0)
    model = GPT(preset.model).to(device)
    forward = torch.compile(model) if t.compile and device.type == "cuda" else model
    optimizers = build_optimizers(model, t)
    ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, preset.model.vocab_size, (micro // seq, seq), device=device)
    y = torch.roll(x, -1, dims=1)

    def step(i: int) -> None:
        apply_schedule(optimizers, i, t)
        for _ in range(accum):
            with autocast(device):
                loss = forward(x, y)
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip_norm or float("inf"))
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ema[k].mul_(t.ema_decay).add_(v.float(), alpha=1 - t.ema_decay)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    sync()
    elapsed = time.perf_counter() - start
    tokens = micro * accum * steps
    return {
        "preset": preset_path, "device": str(device), "parameters": count_parameters(model),
        "tokens_per_step": micro * accum, "steps": steps, "seconds_per_step": round(elapsed / steps, 4),
        "tokens_per_s": round(tokens / elapsed, 1), "threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--smoke-only", action="store_true", help="skip the full preset")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure("submissions/pr940/smoke.toml", torch.device("cpu"), args.steps, args.warmup)), flush=True)
    if args.smoke_only:
        return
    if torch.cuda.is_available():
        r = measure("submissions/pr940/full.toml", torch.device("cuda"), max(args.steps // 4, 3), args.warmup)
        r["gpu"] = torch.cuda.get_device_name()
        print(json.dumps(r), flush=True)
    else:
        r = measure("submissions/pr940/full.toml", torch.device("cpu"), 2, 1, micro_tokens=2048)
        r["note"] = "no GPU: full model on CPU, one 2048-token micro-batch per step"
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
