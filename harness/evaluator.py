"""Strict evaluation: run a plan against a sandboxed predictor and score it in bits per byte.

Data flows one way: plan -> requests -> worker -> predictor, and back only as numbers
that the transport has validated (shape, dtype, finite). The harness applies
log_softmax itself over the full vocabulary in float32 and sums NLL and bytes in
float64, per evaluation chunk. It never keeps a vocabulary-wide row beyond the
request in hand, so its memory does not grow with the number of tokens scored.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.bpb import target_bytes
from harness.errors import BadInput
from harness.plan import DEFAULT_BATCH_SEQS, DEFAULT_SEQ_LEN, DEFAULT_STRIDE, Observe, Score, iter_plan, plan_shape
from harness.probes import ProbeSchedule, compare, perturbed_rows, pick_cut, window_rows

FROM_SUBMISSION = "from-submission"  # option value: use submission.toml's [eval] (or the default)
DEFAULT_REPORT_CHUNK = 32768  # chunk size of the per-chunk BPB list when there is no TTT
STARTUP_SECONDS = 300.0  # worker start-up (interpreter, torch import): harness overhead, not counted
REPLAY_GRACE_SECONDS = 5.0  # a probe replay may run this far past the time limit, no further


@dataclass(frozen=True)
class EvalOptions:
    seq_len: int | str = FROM_SUBMISSION
    stride: int | str = FROM_SUBMISSION
    ttt_chunk: int | None | str = FROM_SUBMISSION  # None: no test-time training (observe never called)
    batch_seqs: int | str = FROM_SUBMISSION
    probe_rate: float = 0.05
    # None: a fresh seed from os.urandom for every run, recorded in the result. A fixed
    # seed is for reproducing a run only: with it a predictor can rebuild the probe
    # schedule and peek exactly on the requests that are never replayed.
    seed: int | None = None
    time_limit: float = 600.0  # seconds of load() + score() + observe(), probe replays excluded
    device: str = "cpu"
    max_val_tokens: int | None = None
    sandbox: bool = True
    progress: bool = True
    log_path: str | None = None  # where the worker's (bounded) output goes
    memory_bytes: int | None = 16 << 30  # worker address-space limit (CPU only; CUDA maps far more)
    audit: bool = True  # run the static audit (auditors.audit_path) and fold it into the verdict
    # Causality replays go to a second worker, loaded separately and fed the same observe()
    # calls: a predictor that memoizes its first outputs cannot replay them there (in the
    # same worker it passes every replay). Costs a second copy of the model and of every
    # observe(); off only by explicit choice (--same-worker-probes), marked in the result.
    independent_probes: bool = True


VAL_TRIM = DEFAULT_SEQ_LEN  # the val stream is cut to whole sequences of this many targets (when it holds one)
MAX_TIME_LIMIT = 7 * 24 * 3600.0
MAX_REQUEST_VALUES = 1 << 28  # float32 scores per reply: 1 GiB


def val_stream(dataset_dir, vocab_size: int | None = None) -> np.ndarray:
    """The val tokens an evaluation scores: all shards, cut to whole sequences of VAL_TRIM
    targets when they hold one. Never the submission's own seq_len: a submission must not
    choose how much of the val set counts (a huge seq_len once dropped half of it)."""
    from harness.data.shards import load_val_tokens

    stream = load_val_tokens(dataset_dir, vocab_size=vocab_size)
    return stream[: ((len(stream) - 1) // VAL_TRIM) * VAL_TRIM + 1] if len(stream) > VAL_TRIM else stream


def _pick(option, from_toml, default):
    if option != FROM_SUBMISSION:
        return option
    return from_toml if from_toml is not None else default


def _check_options(o: EvalOptions) -> None:
    if not (isinstance(o.probe_rate, (int, float)) and 0.0 <= o.probe_rate <= 1.0):
        raise BadInput(f"--probe-rate must be in [0, 1], got {o.probe_rate!r}")
    if not (isinstance(o.time_limit, (int, float)) and 0 < o.time_limit <= MAX_TIME_LIMIT):
        raise BadInput(f"--time-limit must be positive and at most {MAX_TIME_LIMIT:g} seconds, got {o.time_limit!r}")
    if o.seed is not None and not 0 <= o.seed < 2**63:
        raise BadInput(f"--seed must be in [0, 2^63), got {o.seed}")
    if o.device != "cpu" and not o.device.startswith("cuda"):
        raise BadInput(f"--device must be cpu or cuda[:N], got {o.device!r}")
    if o.max_val_tokens is not None and o.max_val_tokens < 2:
        raise BadInput(f"--max-val-tokens must be at least 2, got {o.max_val_tokens}")


def _audit(submission_root: Path, enabled: bool) -> tuple[dict[str, Any], list[str]]:
    if not enabled:
        return {"errors": None, "warnings": None, "findings": [], "skipped": "audit disabled"}, []
    try:
        from auditors import audit_path
    except ImportError as e:
        return {"errors": None, "warnings": None, "findings": [], "skipped": f"auditor unavailable: {e}"}, []
    audit = audit_path(submission_root, profile="official").to_dict()
    active = [f for f in audit.get("findings", []) if f.get("severity") == "error" and f.get("reach") == "active"]
    reasons = [f"static audit: {f.get('rule')} at {f.get('path')}:{f.get('line')}: {f.get('message')}" for f in active]
    return audit, reasons


def log_softmax32(scores: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis, computed in float32 (a fresh array).

    numpy rather than torch: it runs on this thread only, so the harness never keeps
    spinning worker threads that would compete with the predictor for the CPU.
    """
    x = np.asarray(scores, dtype=np.float32)
    with np.errstate(over="ignore"):  # logits ~ +-3e38 overflow to -inf: a zero probability, caught later
        shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True, dtype=np.float32))


class _Scorer:
    """NLL and byte sums per chunk; probe counters; the time budget."""

    def __init__(self, stream: np.ndarray, tables, chunk_size: int, vocab: int):
        self.stream = stream
        self.tables = tables
        self.chunk_size = chunk_size
        self.vocab = vocab
        n_chunks = -(-(len(stream) - 1) // chunk_size)
        self.nll = np.zeros(n_chunks, dtype=np.float64)
        self.bytes = np.zeros(n_chunks, dtype=np.int64)
        self.tokens = np.zeros(n_chunks, dtype=np.int64)

    def add(self, step: Score, log_probs) -> int:
        targets = np.concatenate([self.stream[w.first_target:w.end + 1] for w in step.windows]).astype(np.int64)
        prev = np.concatenate([self.stream[w.first_target - 1:w.end] for w in step.windows])
        positions = np.concatenate([np.arange(w.first_target, w.end + 1) for w in step.windows])
        flat = log_probs.reshape(-1, self.vocab)
        picked = flat[np.arange(len(targets)), targets]
        nll = -picked.astype(np.float64)
        if not np.isfinite(nll).all():
            from harness.sandbox.launcher import WorkerFailure

            bad = int(np.flatnonzero(~np.isfinite(nll))[0])
            raise WorkerFailure(f"score request {step.index}: row {bad // step.n_last} gives its target at position "
                                f"{int(positions[bad])} zero probability (non-finite log-probability {picked[bad]})")
        chunk = (positions - 1) // self.chunk_size
        n = len(self.nll)
        self.nll += np.bincount(chunk, weights=nll, minlength=n)
        self.bytes += np.bincount(chunk, weights=target_bytes(self.tables, prev, targets), minlength=n).astype(np.int64)
        self.tokens += np.bincount(chunk, minlength=n)
        return len(targets)


def evaluate_submission(submission_dir, dataset_dir, tokenizer_path, *, options: EvalOptions | None = None) -> dict:
    """Evaluate a submission folder; the result dict of DESIGN.md "Result JSON".

    BadInput for bad input (folder, manifest, data, options); a submission that
    misbehaves gives a rejected result with reasons, never an exception.
    """
    o = options or EvalOptions()
    _check_options(o)
    if o.seed is None:
        o = replace(o, seed=int.from_bytes(os.urandom(8), "little") >> 1)
    t_start = time.monotonic()
    from harness.artifact import measure, package_dir
    from harness.bpb import bits_per_byte
    from harness.data.tokenizer import build_byte_tables, load_tokenizer
    from harness.sandbox.policy import bwrap_path
    from harness.submission import load_submission

    if o.sandbox and bwrap_path() is None:
        raise BadInput("bubblewrap (bwrap) is not installed: install it, or pass --no-sandbox to run unsandboxed")
    sub = load_submission(submission_dir)
    size = measure(sub)
    packages = {name: package_dir(name) for name in sub.packages}
    seq_len = _pick(o.seq_len, sub.eval.seq_len, DEFAULT_SEQ_LEN)
    stride = _pick(o.stride, sub.eval.stride, DEFAULT_STRIDE)
    ttt_chunk = _pick(o.ttt_chunk, sub.eval.ttt_chunk, None)
    batch_seqs = _pick(o.batch_seqs, sub.eval.batch_seqs, DEFAULT_BATCH_SEQS)
    sp = load_tokenizer(tokenizer_path)
    if int(sp.vocab_size()) != sub.vocab_size:  # probes draw replacement tokens below vocab_size
        raise BadInput(f"submission.toml: vocab_size {sub.vocab_size} differs from the tokenizer's {sp.vocab_size()}")
    tables = build_byte_tables(sp, sub.vocab_size)
    stream = val_stream(dataset_dir, sub.vocab_size)
    if o.max_val_tokens is not None:
        stream = stream[: o.max_val_tokens]
    n_requests, largest = plan_shape(len(stream), seq_len, stride, ttt_chunk, batch_seqs)  # also checks them
    if largest * sub.vocab_size > MAX_REQUEST_VALUES:  # the replies are read into this process's memory
        raise BadInput(f"batch_seqs {batch_seqs} asks for {largest * sub.vocab_size * 4 / 2**30:.1f} GiB of scores per "
                       f"reply (limit {MAX_REQUEST_VALUES * 4 / 2**30:.0f} GiB): use a smaller batch_seqs")
    audit, reasons = _audit(sub.root, o.audit)
    if not size.fits:
        reasons.append(f"size {size.total_bytes:,} bytes (code {size.code_bytes:,} + model {size.model_bytes:,}) "
                       f"exceeds the cap of {size.cap_bytes:,}")

    chunk_size = ttt_chunk or DEFAULT_REPORT_CHUNK
    scorer = _Scorer(stream, tables, chunk_size, sub.vocab_size)
    schedule = ProbeSchedule(n_requests, float(o.probe_rate), o.seed)
    run = _Run(o, sub, packages, scorer, schedule, largest, [Path(dataset_dir)])
    run.execute(iter_plan(len(stream), seq_len, stride, ttt_chunk, batch_seqs), n_targets=len(stream) - 1)
    reasons = run.reasons + reasons

    complete = run.scored == len(stream) - 1 and not run.reasons
    nll_sum, n_bytes = float(scorer.nll.sum()), int(scorer.bytes.sum())
    val_loss = nll_sum / run.scored if complete else None
    val_bpb = bits_per_byte(nll_sum, n_bytes) if complete else None
    warnings = ["probe rate 0: no dynamic probes were run"] if o.probe_rate == 0 else []
    from harness.data.corpus import BUILD_INFO  # the mark of a folder the embedded corpus built

    if (Path(dataset_dir) / BUILD_INFO).is_file():
        warnings.append("embedded corpus: its text is Python's own documentation, which the sandbox must show for "
                        "Python to run, so hostile code can read the val text; trust a score only on FineWeb data")
    from harness.result import build_result

    chunks = [{"index": i, "first_target": i * chunk_size + 1, "tokens": int(scorer.tokens[i]),
               "bytes": int(scorer.bytes[i]), "nll_sum": float(scorer.nll[i]),
               "bpb": bits_per_byte(scorer.nll[i], int(scorer.bytes[i])) if scorer.bytes[i] > 0 else None}
              for i in range(len(scorer.nll)) if scorer.tokens[i] > 0]
    extra = {
        "submission": sub.name,
        "eval_config": {"seq_len": seq_len, "stride": stride, "ttt_chunk": ttt_chunk, "batch_seqs": batch_seqs,
                        "probe_rate": float(o.probe_rate), "seed": o.seed, "time_limit": float(o.time_limit),
                        "device": o.device, "val_tokens": int(len(stream)), "requests": n_requests,
                        "independent_probes": o.independent_probes},
        "observe_called": run.observes,
        "time_counted_seconds": round(run.spent, 3),
        "scoring_seconds": round(run.scoring_seconds, 3),
        "chunk_tokens": chunk_size,
        "chunks": chunks,
        "bpb_per_chunk": [c["bpb"] for c in chunks],
        "probe_failures": run.probe_failures,
        "warnings": warnings,
        "worker_log_tail": run.log_tail,
        "verifier_log_tail": run.verifier_log_tail,
    }
    return build_result(reasons=reasons, complete=complete, val_bpb=val_bpb, val_loss=val_loss,
                        tokens_scored=run.scored, bytes_scored=n_bytes, code_bytes=size.code_bytes,
                        model_bytes=size.model_bytes, cap_bytes=size.cap_bytes, probes=run.probe_counts,
                        audit=audit, sandbox=o.sandbox, eval_seconds=time.monotonic() - t_start, extra=extra)


class _Run:
    """One pass over the plan with one worker; stops at the first failure."""

    def __init__(self, o: EvalOptions, sub, packages, scorer: _Scorer, schedule: ProbeSchedule,
                 largest: int, forbidden: list[Path]):
        self.o, self.sub, self.scorer, self.schedule = o, sub, scorer, schedule
        self.packages, self.largest, self.forbidden = packages, largest, forbidden
        self.reasons: list[str] = []
        self.probe_failures: list[dict] = []
        self.probe_counts = {"causality": {"run": 0, "failed": 0}, "purity": {"run": 0, "failed": 0}}
        self.scored = 0
        self.observes = 0
        self.spent = 0.0  # counted seconds: load, score (not probe replays), observe
        self.scoring_seconds = 0.0  # wall time of the plan (after load), harness side included
        self.log_tail = ""
        self.verifier = None  # WorkerChannel for causality replays with --independent-probes
        self.verifier_log_tail: str | None = None
        self.order = random.Random(o.seed)  # order of original and replays within a probed request

    def _deadline(self) -> float:
        return time.monotonic() + max(0.0, self.o.time_limit - self.spent)

    def _timed(self, call):
        """call(deadline), its wall time counted against the time limit."""
        t0 = time.monotonic()
        try:
            return call(self._deadline())
        finally:
            self.spent += time.monotonic() - t0

    def execute(self, steps, n_targets: int) -> None:
        from tqdm import tqdm

        from harness.sandbox.launcher import WorkerChannel, WorkerFailure, WorkerSpec

        o, sub = self.o, self.sub
        cpu_seconds = int((o.time_limit + 120) * max(1, os.cpu_count() or 1) * 3)
        spec = WorkerSpec(entrypoint=sub.entrypoint, artifact=sub.artifact, submission_root=sub.root,
                          files=(*sub.code, sub.artifact),
                          packages=self.packages, device=o.device, vocab=sub.vocab_size,
                          capacity_values=self.largest * sub.vocab_size, sandbox=o.sandbox,
                          forbidden=self.forbidden, cpu_seconds=cpu_seconds,
                          memory_bytes=o.memory_bytes if o.device == "cpu" else None,
                          log_path=Path(o.log_path) if o.log_path else None)
        bar = tqdm(total=n_targets, unit="tok", unit_scale=True, disable=not o.progress,
                   desc=f"eval {sub.name}", dynamic_ncols=True)
        worker = WorkerChannel(spec)
        if o.independent_probes and o.probe_rate > 0:  # a second, separately loaded worker for causality replays
            log = Path(o.log_path).with_suffix(".verifier.log") if o.log_path else None
            self.verifier = WorkerChannel(replace(spec, log_path=log))
        channels = [worker] + ([self.verifier] if self.verifier else [])
        with ExitStack() as stack:
            for channel in channels:
                stack.enter_context(channel)
            stack.enter_context(bar)
            try:
                for channel in channels:
                    channel.start()
                for channel in channels:
                    channel.wait_started(time.monotonic() + STARTUP_SECONDS)
                self._timed(lambda deadline: worker.wait_ready(deadline))
                if self.verifier:
                    self.verifier.wait_ready(time.monotonic() + o.time_limit)  # not counted
                    steps = self._warm_up(self.verifier, steps)
                t_plan = time.monotonic()
                for step in steps:
                    if isinstance(step, Observe):
                        if worker.has_observe:
                            span = self.scorer.stream[step.start:step.end]
                            doing = f"observe of chunk {step.chunk}"
                            self._timed(lambda d: worker.observe(span, d, doing))
                            if self.verifier:
                                self.verifier.observe(span, time.monotonic() + o.time_limit, f"verifier {doing}")
                            self.observes += 1
                        continue
                    if not self._score(worker, step):
                        break
                    bar.update(step.n_targets)
                self.scoring_seconds = time.monotonic() - t_plan
            except WorkerFailure as e:
                self.reasons.append(str(e))
            finally:
                for channel in channels:
                    channel.close()
                self.log_tail = worker.log.tail()
                if self.verifier:
                    self.verifier_log_tail = self.verifier.log.tail()

    def _warm_up(self, channel, steps):
        """One throw-away request of random tokens, shaped like the first real one, so that
        the verifier's first replay does not carry its one-off start-up costs (lazy
        allocations, kernel selection). Not counted; random tokens reveal nothing."""
        steps = iter(steps)
        first = next(steps, None)
        if not isinstance(first, Score):
            return itertools.chain([first] if first is not None else [], steps)
        tokens = np.random.default_rng().integers(0, self.sub.vocab_size, (len(first.windows), first.length))
        # submission code runs here: bounded like a replay, by what is left of the time limit
        wait = max(0.0, self.o.time_limit - self.spent) + REPLAY_GRACE_SECONDS
        channel.score(tokens, first.n_last, time.monotonic() + wait, "verifier warm-up")
        return itertools.chain([first], steps)

    def _score(self, worker, step: Score) -> bool:
        """Score one request (with its probes); False when a probe failed."""
        stream, rng = self.scorer.stream, self.schedule.rng
        rows = window_rows(stream, step)
        calls: list[tuple[str, np.ndarray, int | None]] = [("original", rows, None)]
        if self.schedule.purity[step.index]:
            calls.append(("purity", rows, None))
        later = []
        if self.schedule.causality[step.index]:
            cut = pick_cut(step, rng)
            call = ("causality", perturbed_rows(stream, step, cut, self.sub.vocab_size, rng), cut)
            (later if self.verifier else calls).append(call)
        if len(calls) > 1:
            self.order.shuffle(calls)  # the worker cannot tell the original from a replay
        # The verifier replays only once the original is answered: whatever it learns from
        # its replay comes too late to change that answer.
        calls += later
        results, took = {}, 0.0
        for kind, tokens, cut in calls:
            doing = f"score request {step.index}" + ("" if kind == "original" else f" ({kind} replay)")
            if kind == "original":
                t0 = time.monotonic()
                scores = self._timed(lambda d: worker.score(tokens, step.n_last, d, doing))
                took = time.monotonic() - t0
            else:
                channel = self.verifier if kind == "causality" and self.verifier else worker
                if channel is not worker:
                    doing = f"verifier {doing}"
                # Not counted, but bounded: a replay that stalls must not outlast the time limit.
                left = max(0.0, self.o.time_limit - self.spent)
                wait = min(max(30.0, 5 * took + 10), left + REPLAY_GRACE_SECONDS)
                scores = channel.score(tokens, step.n_last, time.monotonic() + wait, doing)
            results[kind] = (log_softmax32(scores), cut)
        original = results["original"][0]
        self.scored += self.scorer.add(step, original)
        ok = True
        for kind in ("causality", "purity"):
            if kind in results:
                self.probe_counts[kind]["run"] += 1
                failure = compare(kind, step, original, results[kind][0], results[kind][1])
                if failure is not None:
                    self.probe_counts[kind]["failed"] += 1
                    self.probe_failures.append(asdict(failure))
                    self.reasons.append(failure.reason())
                    ok = False
        return ok
