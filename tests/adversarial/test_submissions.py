"""Every red-team submission gets its expected outcome, and no attack leaves a trace.

The table is cases.toml; the submissions are cases/<name>/. Besides the verdict, exit
code and reason, every case is checked for what must never happen whatever the
verdict: an exit code other than 0/1/2, a run past its time limit (+10 s, +start-up),
the host secret in any output or file, a marker file outside the sandbox, a connection
to the host's listeners, a process surviving the run, unbounded output, a traceback
from the harness itself, or a result file that is not strict JSON.
"""

from __future__ import annotations

import statistics

import pytest

from tests.adversarial.reference import expected_bpb
from tests.adversarial.runner import STARTUP_SLACK, expectations

CASES = expectations()
# Start-up time (interpreter, torch, audit) and the teardown of a killed replay vary from
# run to run on a loaded machine; the overrun check allows this much on top of its 10 s
# (the stalled replay measured 15.9 s over the median run twice in the full suite on the
# 2-core CI machine, 2026-11-26; a harness that does not bound the replay overruns by the
# whole stall instead).
LOAD_NOISE = 8.0


def _params(hole_field: str):
    for name, exp in sorted(CASES.items()):
        hole = getattr(exp, hole_field)
        marks = [pytest.mark.xfail(strict=True, reason=hole)] if hole else []
        yield pytest.param(name, marks=marks, id=name)


def test_table_covers_every_case_folder():
    from tests.adversarial.runner import CASES_DIR

    folders = {p.name for p in CASES_DIR.iterdir() if (p / "submission.toml").exists()}
    assert folders == set(CASES)
    assert sum(e.exact for e in CASES.values()) >= 2 and len(CASES) - sum(e.exact for e in CASES.values()) >= 25


@pytest.mark.parametrize("name", list(_params("hole")))
def test_case_outcome(name, outcomes, redteam_data):
    exp, out = CASES[name], outcomes[name]
    assert out.exit in (0, 1, 2), f"exit {out.exit} (None: killed by the test's guard)\n{out.stderr[-3000:]}"
    assert "Traceback (most recent call last)" not in out.stderr, out.stderr[-3000:]
    if exp.exit == 2:
        assert out.exit == 2, out.stdout[-2000:] + out.stderr[-2000:]
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("harness: error:"), out.stderr[-2000:]
        assert exp.reason in lines[0]
        return
    assert not out.result_invalid, out.result_invalid
    assert out.result is not None, out.stderr[-3000:]
    reasons = " | ".join(out.result["reasons"])
    assert (out.exit, out.result["verdict"]) == (exp.exit, exp.verdict), reasons
    assert exp.reason in reasons
    if exp.exact:
        bpb = expected_bpb(name, out.submission, redteam_data.dataset_dir, redteam_data.tokenizer)
        assert out.result["val_bpb"] == pytest.approx(bpb, rel=1e-9, abs=0)
        assert out.result["tokens_scored"] == out.result["eval_config"]["val_tokens"] - 1


def _uncounted(out) -> float:
    """Seconds of the evaluation the time limit did not count (start-up, audit, replays)."""
    return out.result["eval_seconds"] - out.result["time_counted_seconds"]


@pytest.mark.parametrize("name", list(_params("hole_trace")))
def test_case_leaves_no_trace(name, outcomes):
    exp, out = CASES[name], outcomes[name]
    assert out.exit is not None, "the harness hung past the test's guard"
    # The time limit does not count start-up (interpreter, torch, audit); on a loaded
    # machine that is best measured by a whole honest run in the same session.
    startup = max(STARTUP_SLACK, outcomes["honest_plain"].wall)
    assert out.wall <= exp.time + 10 + startup, f"{out.wall:.1f} s for a {exp.time} s limit"
    if out.result is not None:
        assert out.result["time_counted_seconds"] <= exp.time + 10
        typical = statistics.median(_uncounted(o) for o in outcomes.values() if o.result is not None)
        extra = _uncounted(out) - typical
        assert extra <= 10 + LOAD_NOISE, f"{extra:.1f} s beyond the time limit that a typical run does not take"
    assert not out.secret_seen_in, f"host secret leaked into {out.secret_seen_in}"
    assert not out.markers, f"files written outside the sandbox: {out.markers}"
    assert not out.hits, f"host listeners were contacted: {out.hits}"
    assert not out.survivors, f"processes outlived the run: {out.survivors}"
    assert len(out.stdout) + len(out.stderr) < (64 << 10), "the worker's output reached the harness's output"
    if out.result is not None:
        assert all(len(r) <= 4096 for r in out.result["reasons"]), "a submission's text is not cut short"
    assert out.run_dir_bytes < (4 << 20)
    verdicts = [line for line in out.stdout.splitlines() if line.startswith("verdict:")]
    if out.result is not None:
        assert len(verdicts) == 1 and verdicts[0].startswith(f"verdict: {out.result['verdict']}"), verdicts
