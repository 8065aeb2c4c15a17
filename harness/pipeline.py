"""`harness run` orchestration: data -> train -> audit -> eval -> report, in one run folder.

The run folder (default runs/<submission>-<preset>-seed<N>) holds everything:

    state.json        settings + completed stages (so rerunning the same command resumes)
    config.json       the resolved settings of the run
    submission/       a copy of the submission folder; training writes its artifact here
    train/            trainer checkpoints and metrics.jsonl
    audit.json        static audit of submission/ (DESIGN.md audit JSON)
    eval.json         strict sandboxed eval with the submission's method (TTT if it has one)
    eval_no_ttt.json  the same eval without observe() (only when the submission has TTT)
    results.json      eval result + audit summary + verdict (DESIGN.md result JSON)
    report.md, training.png, chunks.png

A stage is skipped when state.json records it as done and its outputs still exist;
an interrupted training stage resumes from the trainer's own checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.atomic import atomic_write_json, atomic_write_text
from harness.errors import BadInput

STAGES = ("data", "train", "audit", "eval", "report")
STATE_FILE = "state.json"


@dataclass(frozen=True)
class RunSettings:
    submission: str  # the submission folder as given
    preset: str  # smoke | full
    seed: int
    steps: int | None  # override of the preset's training steps
    data: str | None  # dataset dir (shards); None: the embedded corpus
    tokenizer: str | None
    sandbox: bool
    probe_rate: float | None
    time_limit: float | None  # of each strict eval; None: the evaluator's default
    nproc: int
    device: str  # cpu | cuda
    submission_sha256: str  # of the submission's code and data: an edited submission is a new run


def fingerprint(folder: Path, artifact_name: str, packages: list[str] = ()) -> str:
    """SHA-256 over the relative paths and bytes of a submission folder (its artifact and
    __pycache__ left out: training makes the one, Python the other) and of the .py files
    of the packages it ships (`packages`), which are its code too."""
    from harness.artifact import package_dir, package_py_files

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and "__pycache__" not in rel.parts and rel.as_posix() != artifact_name:
            h.update(rel.as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    for pkg in packages:
        root = package_dir(pkg)
        for p in package_py_files(pkg):
            h.update(f"{pkg}/{p.relative_to(root).as_posix()}".encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def default_run_dir(submission: Path, preset: str, seed: int) -> Path:
    """Deterministic, so the same command finds (and resumes) the same folder."""
    return Path("runs") / f"{submission.resolve().name}-{preset}-seed{seed}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_submission_toml(folder: Path) -> dict:
    """The raw manifest. The folder is checked in full (harness.submission.load_submission)
    by the evaluator, after training; before it, the artifact does not exist yet."""
    path = folder / "submission.toml"
    try:
        meta = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{folder}: no submission.toml (is this a submission folder?)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid TOML: {e}") from None
    sub = meta.get("submission")
    if not isinstance(sub, dict) or "artifact" not in sub:
        raise BadInput(f"{path}: [submission] artifact is missing")
    return meta


class RunState:
    """state.json: the settings a run folder was made with, and which stages are done."""

    def __init__(self, run_dir: Path, settings: RunSettings):
        self.path = run_dir / STATE_FILE
        self.settings = asdict(settings)
        if self.path.exists():
            stored = json.loads(self.path.read_text())
            before = stored.get("settings") or {}
            changed = [f"{k}={before.get(k)!r} (now {v!r})" for k, v in self.settings.items() if before.get(k) != v]
            if changed:
                raise BadInput(f"{run_dir}: made with other settings: {', '.join(changed)}; "
                               "pass --out for a new run folder, or delete this one")
            self.done: dict[str, dict] = stored.get("done", {})
            self.seconds: dict[str, float] = stored.get("seconds", {})
        else:
            self.done, self.seconds = {}, {}

    def is_done(self, stage: str, outputs: list[Path]) -> bool:
        return stage in self.done and all(p.exists() for p in outputs)

    def mark(self, stage: str, info: dict, seconds: float) -> None:
        self.done[stage] = info
        self.seconds[stage] = round(seconds, 3)
        atomic_write_json(self.path, {"settings": self.settings, "done": self.done, "seconds": self.seconds})

    def forget_from(self, stage: str) -> None:
        """A redone stage invalidates every later one."""
        for later in STAGES[STAGES.index(stage):]:
            self.done.pop(later, None)


class Pipeline:
    def __init__(self, settings: RunSettings, run_dir: Path):
        self.s = settings
        self.run_dir = run_dir
        self.src = Path(settings.submission)
        self.meta = read_submission_toml(self.src)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.state = RunState(run_dir, settings)
        self.sub_dir = run_dir / "submission"
        from harness.submission import inside

        self.artifact = inside(self.sub_dir.resolve(), self.meta["submission"]["artifact"],
                               "[submission] artifact", must_exist=False)
        self.has_ttt = bool(self.meta.get("eval", {}).get("ttt_chunk"))

    # each stage: (outputs that must exist for a skip, function returning info for state.json)
    def stages(self):
        r = self.run_dir
        data = self.state.done.get("data")
        return [
            ("data", [Path(data["dataset_dir"]), Path(data["tokenizer_path"])] if data else [], self.stage_data),
            ("train", [self.artifact, r / "train" / "metrics.jsonl"], self.stage_train),
            ("audit", [r / "audit.json"], self.stage_audit),
            ("eval", [r / "eval.json"] + ([r / "eval_no_ttt.json"] if self.has_ttt else []), self.stage_eval),
            ("report", [r / "results.json", r / "report.md"], self.stage_report),
        ]

    def execute(self) -> dict:
        atomic_write_json(self.run_dir / "config.json", {"run_dir": str(self.run_dir), **asdict(self.s)})
        stages = self.stages()
        for i, (name, outputs, fn) in enumerate(stages, 1):
            if self.state.is_done(name, outputs):
                log(f"[{i}/{len(stages)}] {name}: done earlier, skipped")
                continue
            self.state.forget_from(name)
            log(f"[{i}/{len(stages)}] {name} ...")
            start = time.time()
            info = fn()
            self.state.mark(name, info, time.time() - start)
        return json.loads((self.run_dir / "results.json").read_text())

    # ---- stages -------------------------------------------------------------------------

    def stage_data(self) -> dict:
        if self.s.data is None:
            from harness.data.corpus import ensure_embedded

            info = ensure_embedded()
            return {"dataset_dir": str(info.dataset_dir), "tokenizer_path": str(info.tokenizer_path),
                    "source": "embedded"}
        from harness.data.shards import find_shards

        dataset = Path(self.s.data)
        find_shards(dataset, "train")
        find_shards(dataset, "val")
        tok = Path(self.s.tokenizer) if self.s.tokenizer else guess_tokenizer(dataset)
        if not tok.is_file():
            raise BadInput(f"--tokenizer {tok}: no such file")
        return {"dataset_dir": str(dataset), "tokenizer_path": str(tok), "source": "given"}

    @property
    def data(self) -> dict:
        return self.state.done["data"]

    def stage_train(self) -> dict:
        self.copy_submission()
        from reference_model.train import train_submission

        result = train_submission(self.sub_dir, self.run_dir / "train", preset=self.s.preset,
                                  data_dir=self.data["dataset_dir"], tokenizer=self.data["tokenizer_path"],
                                  steps=self.s.steps, nproc=self.s.nproc, seed=self.s.seed,
                                  artifact_path=self.artifact, device=self.s.device)
        d = result.details
        log(f"    trained {d['steps']} steps, {d['parameters']:,} parameters; "
            f"artifact {d['model_bytes']:,} bytes; val_bpb after the artifact round trip {result.val_bpb:.4f}")
        return {k: d.get(k) for k in ("steps", "parameters", "val_bpb", "val_bpb_roundtrip", "unigram_bpb",
                                      "model_bytes", "code_bytes", "total_bytes")}

    def copy_submission(self) -> None:
        """<run>/submission: the copy that is trained, audited and scored (the source stays untouched)."""
        if self.sub_dir.exists():
            return
        _refuse_links_out(self.src)
        tmp = self.run_dir / ".submission.copying"
        shutil.rmtree(tmp, ignore_errors=True)
        # links stay links: following one would copy a host file into what the sandbox shows
        shutil.copytree(self.src, tmp, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        # a stale artifact in the source folder is not the one this run trains
        (tmp / self.artifact.relative_to(self.sub_dir.resolve())).unlink(missing_ok=True)
        tmp.rename(self.sub_dir)  # a half copy is never mistaken for the submission

    def stage_audit(self) -> dict:
        from auditors import audit_path

        report = audit_path(self.sub_dir, profile="official")
        audit = report.to_dict()
        atomic_write_json(self.run_dir / "audit.json", audit)
        return {"errors": audit.get("errors"), "warnings": audit.get("warnings")}

    def stage_eval(self) -> dict:
        """The strict eval with the submission's method; again without observe() if it has TTT."""
        from harness.evaluator import EvalOptions, evaluate_submission

        method = self.smoke_eval_method()
        runs = [("eval.json", "with the submission's method", method)]
        if self.has_ttt:
            runs.append(("eval_no_ttt.json", "without test-time training", {**method, "ttt_chunk": None}))
        info = {}
        for name, what, override in runs:
            # the audit is a stage of its own (audit.json); report.build_results merges it
            # the probe seed is left to the evaluator (fresh per run): the training seed is public
            options = EvalOptions(sandbox=self.s.sandbox, device=self.s.device, audit=False,
                                  log_path=str(self.run_dir / f"{Path(name).stem}_worker.log"),
                                  **self.given(probe_rate=self.s.probe_rate, time_limit=self.s.time_limit),
                                  **override)
            log(f"    strict eval {what} ...")
            result = evaluate_submission(self.sub_dir, Path(self.data["dataset_dir"]),
                                         Path(self.data["tokenizer_path"]), options=options)
            atomic_write_json(self.run_dir / name, result)
            info[name] = {"verdict": result.get("verdict"), "val_bpb": result.get("val_bpb")}
            log(f"    {what}: {result.get('verdict')}, val_bpb {result.get('val_bpb')}")
        return info

    def smoke_eval_method(self) -> dict:
        """Under the smoke preset, score with windows no longer than the context the smoke
        model was trained on (the preset's train_seq_len): a 256-token model scored with
        the published 2048-token windows costs ~8x the CPU time for a context it never
        learned to use. Stride is kept (capped at the window); TTT is the submission's.
        The published preset (full) is always scored with the submission's [eval]."""
        if self.s.preset != "smoke":
            return {}
        from harness.plan import DEFAULT_SEQ_LEN, DEFAULT_STRIDE
        from reference_model.config import load_preset
        from reference_model.train import preset_path

        trained = load_preset(preset_path(self.sub_dir, "smoke")).train.train_seq_len
        ev = self.meta.get("eval", {})
        if ev.get("seq_len", DEFAULT_SEQ_LEN) <= trained:
            return {}
        return {"seq_len": trained, "stride": min(ev.get("stride", DEFAULT_STRIDE), trained)}

    @staticmethod
    def given(**options) -> dict:
        """The options the user set; the rest keep the evaluator's defaults."""
        return {k: v for k, v in options.items() if v is not None}

    def stage_report(self) -> dict:
        from harness import report
        from harness.plots import plot_chunks, plot_training

        r = self.run_dir
        eval_result = json.loads((r / "eval.json").read_text())
        no_ttt = json.loads((r / "eval_no_ttt.json").read_text()) if self.has_ttt else None
        audit = json.loads((r / "audit.json").read_text())
        run_info = {"submission": self.meta["submission"].get("name", self.src.name),
                    "preset": self.s.preset, "seed": self.s.seed, "steps": self.s.steps,
                    "device": self.s.device, "dataset_dir": self.data["dataset_dir"],
                    "tokenizer_path": self.data["tokenizer_path"], "data_source": self.data["source"],
                    "smoke_eval_method": self.smoke_eval_method() or None,
                    "stage_seconds": dict(self.state.seconds),
                    "wall_seconds": round(sum(self.state.seconds.values()), 3)}
        results = report.build_results(eval_result, audit, run_info, no_ttt)
        title = f"{run_info['submission']} ({self.s.preset}, seed {self.s.seed})"
        plots = {}
        if plot_training(read_jsonl(r / "train" / "metrics.jsonl"), r / "training.png",
                         f"training: {title}"):
            plots["Training loss and validation BPB"] = "training.png"
        if plot_chunks(eval_result.get("chunks") or [], (no_ttt or {}).get("chunks"),
                       r / "chunks.png", f"BPB per evaluation chunk: {title}"):
            plots["BPB per evaluation chunk"] = "chunks.png"
        atomic_write_json(r / "results.json", results)
        atomic_write_text(r / "report.md", report.render_markdown(results, plots))
        return {"verdict": results["verdict"]}


def read_jsonl(path: Path) -> list[dict]:
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: the rest of the file is still good
            if isinstance(rec, dict):
                records.append(rec)
    return records


def guess_tokenizer(dataset: Path) -> Path:
    """The official layout: <data>/datasets/<name>/ next to <data>/tokenizers/<tok>.model."""
    models = sorted((dataset.parent.parent / "tokenizers").glob("*.model"))
    if len(models) != 1:
        raise BadInput(f"--data {dataset}: cannot tell which tokenizer goes with it; pass --tokenizer MODEL")
    return models[0]


def _refuse_links_out(folder: Path) -> None:
    """BadInput for any symlink in the submission folder that resolves outside it."""
    root = Path(folder).resolve()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise BadInput(f"{path}: symlink resolves outside the submission folder")
