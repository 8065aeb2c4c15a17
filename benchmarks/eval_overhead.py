"""Overhead of strict sandboxed evaluation against a plain in-process loop (CPU).

    python benchmarks/eval_overhead.py [--tokens 20000] [--seq-len 256] [--stride 64]

Prints measured ratios, best of --repeats interleaved runs (no assertion: timings on a
shared machine are noisy):
- tokens/s of `evaluate_submission` (bwrap sandbox, probe rate 0) over tokens/s of an
  in-process loop over the same model, windows and batches (log_softmax + gather
  included in both); target >= 0.90;
- scoring time at probe rate 0.05 over probe rate 0; target <= 1.10;
- peak RSS of the harness process (the worker excluded) for a small and a 4x larger
  validation stream, in fresh processes; target: it grows by the validation tokens
  themselves, not with the number of tokens scored.
The model is a small causal transformer with seeded random weights; its artifact is
just the seed (text), so no weights file is involved.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PREDICTOR = '''
import torch
import torch.nn.functional as F

class TinyCausalLM(torch.nn.Module):
    def __init__(self, vocab, dim=128, layers=2, heads=4):
        super().__init__()
        self.heads = heads
        self.emb = torch.nn.Embedding(vocab, dim)
        self.qkv = torch.nn.ModuleList(torch.nn.Linear(dim, 3 * dim) for _ in range(layers))
        self.mlp = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(),
                                                           torch.nn.Linear(4 * dim, dim)) for _ in range(layers))
        self.head = torch.nn.Linear(dim, vocab)

    def score(self, tokens, n_last):
        x = self.emb(tokens)
        b, t, d = x.shape
        for qkv, mlp in zip(self.qkv, self.mlp):
            q, k, v = qkv(F.layer_norm(x, (d,))).view(b, t, 3, self.heads, d // self.heads).unbind(2)
            att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
            x = x + att.transpose(1, 2).reshape(b, t, d)
            x = x + mlp(F.layer_norm(x, (d,)))
        return self.head(F.layer_norm(x[:, -n_last:], (d,)))

def load(artifact_path, device):
    seed, vocab = (int(v) for v in open(artifact_path).read().split())
    torch.manual_seed(seed)
    return TinyCausalLM(vocab).eval().to(device)
'''


def make_submission(folder: Path, vocab: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictor.py").write_text(PREDICTOR)
    (folder / "seed.txt").write_text(f"1234 {vocab}\n")
    (folder / "submission.toml").write_text(
        '[submission]\nname = "bench"\nentrypoint = "predictor.py"\nartifact = "seed.txt"\n'
        f'code = ["predictor.py"]\nvocab_size = {vocab}\n')
    return folder


def in_process_tokens_per_s(folder: Path, stream: np.ndarray, seq_len, stride, batch) -> float:
    import torch

    from harness.plan import Score, iter_plan

    spec = importlib.util.spec_from_file_location("bench_predictor", folder / "predictor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own benchmark model, not a submission
    model = module.load(str(folder / "seed.txt"), "cpu")
    total, nll = 0, 0.0
    t0 = time.perf_counter()
    for step in iter_plan(len(stream), seq_len, stride, None, batch):
        if not isinstance(step, Score):
            continue
        rows = torch.from_numpy(np.stack([stream[w.start:w.end] for w in step.windows]).astype(np.int64))
        targets = torch.from_numpy(np.concatenate([stream[w.first_target:w.end + 1] for w in step.windows]).astype(np.int64))
        with torch.inference_mode():
            lp = torch.log_softmax(model.score(rows, step.n_last).float(), dim=-1).reshape(-1, lp_dim(model))
        nll += float(-lp.gather(1, targets[:, None]).double().sum())
        total += len(targets)
    return total / (time.perf_counter() - t0)


def lp_dim(model) -> int:
    return model.head.out_features


def sandboxed(folder: Path, data, probe_rate: float, tokens: int, seq_len, stride, batch) -> dict:
    from harness.evaluator import EvalOptions, evaluate_submission

    opts = EvalOptions(seq_len=seq_len, stride=stride, ttt_chunk=None, batch_seqs=batch, probe_rate=probe_rate,
                       max_val_tokens=tokens, progress=False, audit=False,
                       seed=7)  # a fixed sample: the same replay count in every repeat
    result = evaluate_submission(folder, data.dataset_dir, data.tokenizer_path, options=opts)
    if result["verdict"] != "accepted":
        raise SystemExit(f"benchmark eval rejected: {result['reasons']}")
    return result


MEMORY_PROBE = """
import json, resource, sys
from harness.evaluator import EvalOptions, evaluate_submission
folder, dataset, tokenizer, tokens, seq_len, stride, batch = sys.argv[1:]
opts = EvalOptions(seq_len=int(seq_len), stride=int(stride), ttt_chunk=None, batch_seqs=int(batch),
                   probe_rate=0.0, max_val_tokens=int(tokens), progress=False, audit=False)
r = evaluate_submission(folder, dataset, tokenizer, options=opts)
print(json.dumps({"tokens_scored": r["tokens_scored"], "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def peak_rss(folder: Path, data, tokens: int, seq_len, stride, batch) -> dict:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(folder), str(data.dataset_dir),
                          str(data.tokenizer_path), str(tokens), str(seq_len), str(stride), str(batch)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=24000)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--batch-seqs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from harness.data.corpus import ensure_embedded
    from harness.data.shards import load_val_tokens

    data = ensure_embedded(quiet=True)
    stream = load_val_tokens(data.dataset_dir, seq_len=args.seq_len)[: args.tokens]
    shape = (args.seq_len, args.stride, args.batch_seqs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_submission(Path(tmp) / "bench", 1024)
        best = {"inproc": 0.0, "p0": 0.0, "p05": float("inf"), "p0_s": float("inf"), "share": 1.0}
        for _ in range(args.repeats):  # best of N: the machine is shared
            best["inproc"] = max(best["inproc"], in_process_tokens_per_s(folder, stream, *shape))
            r0 = sandboxed(folder, data, 0.0, args.tokens, *shape)
            r5 = sandboxed(folder, data, 0.05, args.tokens, *shape)
            best["p0"] = max(best["p0"], r0["tokens_scored"] / r0["scoring_seconds"])
            best["p0_s"] = min(best["p0_s"], r0["scoring_seconds"])
            best["p05"] = min(best["p05"], r5["scoring_seconds"])
            # within one run, same load: plan wall time over the time of the counted calls alone
            best["within"] = min(best.get("within", float("inf")), r5["scoring_seconds"] / r5["time_counted_seconds"])
            best["replays"] = sum(p["run"] for p in r5["probes"].values())
            best["requests"] = r5["eval_config"]["requests"]
            # wall time between the worker's calls (transport checks, log_softmax, sums)
            best["share"] = min(best["share"], 1 - r0["time_counted_seconds"] / r0["scoring_seconds"])
        small = peak_rss(folder, data, args.tokens // 4, *shape)
        large = peak_rss(folder, data, args.tokens, *shape)
    print(f"in-process loop          : {best['inproc']:,.0f} tokens/s")
    print(f"sandboxed, probe rate 0  : {best['p0']:,.0f} tokens/s")
    print(f"ratio sandboxed/in-proc  : {best['p0'] / best['inproc']:.3f}   (target >= 0.90)")
    print(f"harness-side share of the sandboxed scoring wall time: {100 * best['share']:.2f}%")
    print(f"probe 0.05 / probe 0 time: {best['p05'] / best['p0_s']:.3f}   (target <= 1.10)")
    print(f"probe 0.05, within a run : {best['within']:.3f}   (plan wall time / counted score+observe time; "
          f"robust to load changes between runs)")
    print(f"score() calls at 0.05    : {1 + best['replays'] / best['requests']:.3f}x the calls at rate 0 "
          f"({best['replays']} replays over {best['requests']} requests)")
    grow = (large["peak_rss_kib"] - small["peak_rss_kib"]) * 1024
    extra_tokens = large["tokens_scored"] - small["tokens_scored"]
    print(f"harness peak RSS         : {small['peak_rss_kib'] / 1024:.1f} MiB at {small['tokens_scored']:,} tokens, "
          f"{large['peak_rss_kib'] / 1024:.1f} MiB at {large['tokens_scored']:,} tokens "
          f"({grow / max(1, extra_tokens):.1f} bytes per extra token scored)")


if __name__ == "__main__":
    main()
