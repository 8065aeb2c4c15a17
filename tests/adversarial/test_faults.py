"""Faults: a training run killed with SIGKILL at random points, a worker killed from the
outside mid-evaluation, a full disk under the result file, and corrupt inputs (shards,
tokenizer, artifact, submission.toml) fuzzed with hypothesis: exit 2 with one line,
never a traceback. The fuzz runs the CLI in-process (harness.cli.main); a few runs use
the real console script in a subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.cli import main
from tests.adversarial.reference import expected_bpb
from tests.adversarial.runner import (World, assemble, expectations, harness_command, harness_env,
                                      Listeners)

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), err[-2000:]
    return lines[0]


@pytest.fixture
def honest(tmp_path, redteam_data):
    """An assembled honest_plain case (submission + host folders)."""
    world = World(tmp_path / "honest_plain", redteam_data.dataset_dir, redteam_data.tokenizer)
    listeners = Listeners()
    assemble(expectations()["honest_plain"], world, redteam_data.vocab, listeners)
    yield world
    listeners.close()
    world.cleanup()


def _eval_args(world, *extra) -> list[str]:
    return ["eval", str(world.submission), "--data", str(world.dataset_dir), "--tokenizer", str(world.tokenizer),
            "--quiet", *extra]


# ---- corrupt inputs ---------------------------------------------------------------------

MANIFEST_FIELDS = {
    "name": st.one_of(st.just(""), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
    "entrypoint": st.one_of(st.just(""), st.just("../x.py"), st.just("/etc/passwd"), st.just("missing.py"),
                            st.just("artifact.bin"), st.integers(), st.booleans()),
    "artifact": st.one_of(st.just(""), st.just("../../x"), st.just("/dev/zero"), st.just("nope.bin"),
                          st.floats(allow_nan=True), st.lists(st.integers(), max_size=2)),
    "code": st.one_of(st.just([]), st.just(["../predictor.py"]), st.just(["nope.py"]), st.just("predictor.py"),
                      st.lists(st.integers(), min_size=1, max_size=2)),
    "vocab_size": st.one_of(st.integers(max_value=0), st.just("1024"), st.booleans(), st.floats(allow_nan=True),
                            st.just(1023)),
}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


@FUZZ
@given(field=st.sampled_from(sorted(MANIFEST_FIELDS)), data=st.data())
def test_manifest_with_one_bad_field_is_bad_input(honest, capsys, field, data):
    """Every field of a valid manifest, replaced by a bad value: exit 2 naming the manifest."""
    sub = honest.submission
    original = (sub / "submission.toml").read_text()
    value = data.draw(MANIFEST_FIELDS[field])
    lines = [f"{field} = {_toml_value(value)}" if line.startswith(f"{field} =") else line
             for line in original.splitlines()]
    try:
        (sub / "submission.toml").write_text("\n".join(lines) + "\n")
        assert main(_eval_args(honest)) == 2
        assert "submission.toml" in _one_line_error(capsys)
    finally:
        (sub / "submission.toml").write_text(original)


def _same_manifest(a: bytes, b: bytes) -> bool:
    """a is b's manifest, or b's with optional parts cut off (a truncation that drops the
    whole `[eval]` table leaves a valid manifest that runs on defaults): every table of a
    holds a subset of the same table of b, and the required `[submission]` table is whole."""
    try:
        got, full = tomllib.loads(a.decode()), tomllib.loads(b.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    if got.get("submission") != full.get("submission"):
        return False
    return all(isinstance(v, dict) and isinstance(full.get(k), dict) and all(full[k].get(kk) == vv for kk, vv in v.items())
               for k, v in got.items())


@FUZZ
@given(blob=st.binary(max_size=400), cut=st.integers(0, 400))
def test_garbled_manifest_is_bad_input(honest, capsys, blob, cut):
    sub = honest.submission
    original = (sub / "submission.toml").read_bytes()
    garbled = original[:cut] + blob
    assume(not _same_manifest(garbled, original))  # e.g. only a comment appended
    try:
        (sub / "submission.toml").write_bytes(garbled)
        assert main(_eval_args(honest)) == 2
        _one_line_error(capsys)
    finally:
        (sub / "submission.toml").write_bytes(original)


@FUZZ
@given(offset=st.integers(0, 11), value=st.binary(min_size=1, max_size=4), cut=st.one_of(st.none(), st.integers(0)))
def test_corrupt_val_shard_is_bad_input(honest, capsys, offset, value, cut):
    """Magic, version or token count changed, or the file cut short: exit 2 naming the file."""
    shard = honest.root / "data" / "redteam_val_000000.bin"
    shard.parent.mkdir(exist_ok=True)
    good = next(honest.dataset_dir.glob("*_val_*.bin")).read_bytes()
    if cut is not None:
        bad = good[: cut % len(good)]
    else:
        bad = bytearray(good)
        bad[offset: offset + len(value)] = value
        bad = bytes(bad[: len(good)]) if len(bad) >= len(good) else bytes(bad)
    assume(bad[:12] != good[:12] or len(bad) != len(good))
    shard.write_bytes(bad)
    code = main(["eval", str(honest.submission), "--data", str(shard.parent), "--tokenizer", str(honest.tokenizer),
                 "--quiet"])
    assert code == 2
    assert "redteam_val_000000.bin" in _one_line_error(capsys)


@FUZZ
@given(blob=st.binary(max_size=2000), keep=st.integers(0, 5000))
def test_corrupt_tokenizer_is_bad_input(honest, capsys, blob, keep):
    model = honest.root / "bad.model"
    model.write_bytes(honest.tokenizer.read_bytes()[:keep] + blob)
    assert main(["eval", str(honest.submission), "--data", str(honest.dataset_dir), "--tokenizer", str(model),
                 "--quiet"]) == 2
    assert "bad.model" in _one_line_error(capsys)


def test_corrupt_artifact_is_rejected_not_a_crash(honest):
    """The harness does not parse artifacts; the predictor fails in load(): exit 1, a reason."""
    artifact = honest.submission / "artifact.bin"
    artifact.write_bytes(artifact.read_bytes()[:100])
    exp = expectations()["honest_plain"]
    proc = subprocess.run(harness_command(honest, exp), cwd=honest.run_dir, env=harness_env(honest),
                          capture_output=True, text=True, timeout=exp.time + 120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = json.loads(honest.result_json.read_text())
    assert result["verdict"] == "rejected" and "load failed" in " ".join(result["reasons"])


def test_real_console_script_gives_the_exact_bpb(honest, redteam_data):
    """The red-team runs use eval_driver.py; the installed `harness` script gives the same exact BPB."""
    exe = shutil.which("harness") or pytest.fail("the harness console script is not installed")
    out = honest.run_dir / "console.json"
    proc = subprocess.run([exe, *_eval_args(honest, "--json", str(out), "--probe-rate", "1.0")],
                          cwd=honest.run_dir, env=harness_env(honest), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = expected_bpb("honest_plain", honest.submission, redteam_data.dataset_dir, redteam_data.tokenizer)
    assert json.loads(out.read_text())["val_bpb"] == pytest.approx(expected, rel=1e-9, abs=0)


# ---- a worker killed from outside ------------------------------------------------------

SLOW_PREDICTOR = '''
import time

from redteam_base import Bigram, read_weights


class Slow(Bigram):
    def score(self, tokens, n_last):
        time.sleep(0.5)
        return super().score(tokens, n_last)


def load(artifact_path, device):
    return Slow(read_weights(artifact_path))
'''


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _is_worker(pid: int) -> bool:
    try:
        return b"harness.sandbox.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _start_slow_eval(world):
    """A running `harness eval` of a slow honest predictor, once its worker is inside scoring."""
    (world.submission / "predictor.py").write_text(SLOW_PREDICTOR)
    proc = subprocess.Popen(harness_command(world, expectations()["honest_plain"]), cwd=world.run_dir,
                            env=harness_env(world), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen, workers = time.monotonic() + 120, None, []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [p for p in _descendants(proc.pid) if _is_worker(p)]
        if workers and seen is None:
            seen = time.monotonic()
        if seen is not None and time.monotonic() - seen > 3.0:  # past start-up, inside scoring
            return proc, workers
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no worker process appeared")


def test_worker_killed_mid_evaluation_is_rejected(honest):
    proc, workers = _start_slow_eval(honest)
    for p in workers:
        os.kill(p, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    result = json.loads(honest.result_json.read_text())
    assert result["verdict"] == "rejected" and "worker" in " ".join(result["reasons"])
    assert result["val_bpb"] is None


def test_terminated_eval_leaves_nothing_behind(honest):
    proc, workers = _start_slow_eval(honest)
    own = {os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")}
    transport = {Path(p).parent for p in own if "pgolf-eval-" in p}
    assert transport, "the transport folder was not found among the harness's open files"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    time.sleep(2)
    alive = [p for p in workers if Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes()]
    leaked = [t for t in transport if t.exists()]
    for t in leaked:
        shutil.rmtree(t, ignore_errors=True)  # the hole's litter, not to be left on the machine
    assert not alive, f"workers outlived the run: {alive}"
    assert not leaked, f"the transport folder outlived the run: {leaked}"


# ---- a full disk under the output --------------------------------------------------------

class _FullDiskOs:
    """harness.atomic's view of `os`, with fsync failing as on a full disk."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def disk_full_run(redteam_data, tmp_path_factory):
    """One evaluation whose result write hits a full disk: (exit code or exception, stderr, world)."""
    import harness.atomic

    world = World(tmp_path_factory.mktemp("disk_full") / "honest_plain", redteam_data.dataset_dir,
                  redteam_data.tokenizer)
    listeners = Listeners()
    assemble(expectations()["honest_plain"], world, redteam_data.vocab, listeners)
    listeners.close()
    world.result_json.write_text(EARLIER_RESULT)
    mp = pytest.MonkeyPatch()
    mp.setattr(harness.atomic, "os", _FullDiskOs())
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            outcome = main(_eval_args(world, "--json", str(world.result_json), "--max-val-tokens", "200",
                                      "--probe-rate", "0"))
    except OSError as e:
        outcome = e
    finally:
        mp.undo()
        world.cleanup()
    return outcome, err.getvalue(), world


EARLIER_RESULT = '{"earlier": "result"}\n'


def test_disk_full_keeps_the_earlier_result(disk_full_run):
    _, _, world = disk_full_run
    assert world.result_json.read_text() == EARLIER_RESULT
    assert [p.name for p in world.run_dir.iterdir()] == ["result.json"]  # no temporary file left


def test_disk_full_is_one_line_and_exit_2(disk_full_run):
    outcome, err, _ = disk_full_run
    assert outcome == 2, f"main raised {outcome!r}" if isinstance(outcome, BaseException) else outcome
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left" in lines[0]


# ---- training killed at random points -------------------------------------------------------

KILLS = 2  # each restart pays an interpreter + torch start-up: keep the count small

def test_training_killed_at_random_points_resumes_to_the_same_weights(tmp_path, tiny_data):
    from reference_model.checkpoint import list_checkpoints, load_checkpoint
    from reference_model.train import train_submission
    from tests.model.helpers import make_submission

    iterations = 12
    sub = make_submission(tmp_path / "sub", iterations=iterations, warmdown=4, checkpoint_every=3)
    # the straight run uses one thread like the killed runs (OMP_NUM_THREADS=1 below): CPU kernels
    # split their sums by thread count, so two threads round differently from one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_submission(sub, tmp_path / "straight", preset="tiny", data_dir=tiny_data.dataset_dir,
                         tokenizer=tiny_data.tokenizer_path, device="cpu")
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness", "train", str(sub), "--preset", "tiny", "--out", str(out),
           "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path), "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = random.Random(940)
    kills = 0
    for attempt in range(KILLS + 2):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                                env=env, text=True)
        # progress = metrics lines: kill after a random number of further steps, plus a random
        # sub-step delay, so kills land in start-up, steps, checkpoint writes and the end
        metrics = out / "metrics.jsonl"
        start = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        target = start + rng.randint(0, 4)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and attempt < KILLS:
            done = len(metrics.read_text().splitlines()) if metrics.exists() else 0
            if done >= target:
                time.sleep(rng.uniform(0, 0.3))
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert proc.returncode == 0 and kills >= 1
    a = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(out / "checkpoints")[-1])
    assert a.step == b.step == iterations
    for name, t in a.model.items():
        assert torch.equal(t, b.model[name]), name
    assert (tmp_path / "straight" / "artifact.ptz").read_bytes() == (out / "artifact.ptz").read_bytes()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, iterations + 1))
