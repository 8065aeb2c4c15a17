"""Assembling a red-team case, running `harness eval` on it, and collecting the evidence.

Every case runs as a real subprocess (eval_driver.py: the real CLI, smaller worker
memory limit) with a fake secret in its environment and in a fake home, listeners on
the host's loopback and abstract-socket namespace, and folders where an escape would
leave marker files. The Outcome records what the harness said and what the attack left
behind; test_submissions.py judges it against cases.toml.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES_DIR = HERE / "cases"
BASE_DIR = HERE / "base"  # shared modules, copied into a case when its `code` lists them
DRIVER = HERE / "eval_driver.py"
SECRET_ENV = "PGOLF_REDTEAM_SECRET"
MARKER = "REDTEAM-MARKER"
CAP = 16_000_000
DEFAULT_TIME_LIMIT = 60.0
WORKER_MEMORY = 3 << 30  # the sandbox's address-space limit for these runs (see eval_driver.py)
# Interpreter + torch start-ups of the harness and of its worker are not counted by the
# harness's time limit (evaluator.STARTUP_SECONDS); on a loaded 2-core machine they take
# a while, so the hang check allows this much on top of "time limit + 10 s".
STARTUP_SLACK = 25.0

sys.path.insert(0, str(BASE_DIR))
import redteam_base  # noqa: E402  (our own fixture modules, trusted test code)
import redteam_escape  # noqa: E402


@dataclass(frozen=True)
class Expectation:
    name: str
    exit: int
    verdict: str | None = None
    reason: str = ""
    exact: bool = False
    setup: str = ""
    time: float = DEFAULT_TIME_LIMIT
    hole: str | None = None  # test_case_outcome is xfail(strict) with this reason
    hole_trace: str | None = None  # test_case_leaves_no_trace is xfail(strict) with this reason
    args: tuple[str, ...] = ()  # extra `harness eval` flags (after the defaults, so they win)


def expectations() -> dict[str, Expectation]:
    table = tomllib.loads((HERE / "cases.toml").read_text())
    return {name: Expectation(name=name, **dict(row, args=tuple(row.get("args", ())))) for name, row in table.items()}


# ---- the host side of the world an attack tries to reach --------------------------------

class Listeners:
    """TCP, UDP and abstract unix listeners in the host's namespaces; they record any contact."""

    def __init__(self):
        self.hits: list[str] = []
        self._stop = threading.Event()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.abstract_name = f"pgolf-redteam-{uuid.uuid4().hex}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract_name)
        self.unix.listen(8)
        self._threads = [threading.Thread(target=self._watch, args=(s, kind), daemon=True)
                         for s, kind in ((self.tcp, "tcp"), (self.udp, "udp"), (self.unix, "unix"))]
        for t in self._threads:
            t.start()

    def _watch(self, sock: socket.socket, kind: str) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if kind == "udp":
                    data, _ = sock.recvfrom(4096)
                    self.hits.append(f"udp datagram {data[:32]!r}")
                else:
                    conn, _ = sock.accept()
                    self.hits.append(f"{kind} connection")
                    conn.close()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return

    def config(self) -> dict:
        return {"tcp_port": self.tcp.getsockname()[1], "udp_port": self.udp.getsockname()[1],
                "abstract_socket": self.abstract_name}

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for s in (self.tcp, self.udp, self.unix):
            s.close()


@dataclass
class World:
    """Host folders of one case: what the attack may try to reach."""

    root: Path
    dataset_dir: Path
    tokenizer: Path
    secret: str = field(default_factory=lambda: f"{redteam_escape.SECRET_PREFIX}{uuid.uuid4().hex}")

    def __post_init__(self):
        self.submission = self.root / "submission"
        self.outside = self.root / "outside"
        self.run_dir = self.root / "run"
        self.home = self.root / "home"
        for d in (self.outside, self.run_dir, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.host_tmp = Path(tempfile.mkdtemp(prefix="pgolf-redteam-", dir="/tmp"))
        self.secret_file = self.home / ".secret"
        self.secret_file.write_text(f"token = {self.secret} ::: (not Python, so a parser would quote it)\n")
        self.process_tag = "rt" + uuid.uuid4().hex[:10]
        self.result_json = self.run_dir / "result.json"

    def write_dirs(self) -> list[str]:
        return [str(p) for p in (self.submission, self.run_dir, self.home, self.dataset_dir, self.host_tmp)]

    def marker_files(self) -> list[Path]:
        found = []
        for top in (self.root, self.host_tmp, self.dataset_dir, REPO):
            pattern = "**/*" if top != REPO else "*"
            found += [p for p in top.glob(pattern) if MARKER in p.name]
        return found

    def survivors(self) -> list[str]:
        alive = []
        for comm in Path("/proc").glob("[0-9]*/comm"):
            try:
                if comm.read_text().strip() == self.process_tag[:15]:
                    alive.append(comm.parent.name)
            except OSError:
                continue
        return alive

    def cleanup(self) -> None:
        shutil.rmtree(self.host_tmp, ignore_errors=True)


# ---- artifacts ---------------------------------------------------------------------------

def case_weights(name: str, vocab: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return (rng.standard_normal((redteam_base.N_ROWS, vocab)) * 0.7).astype("<f4")


class _ExecOnLoad:
    """Pickles as a call to exec(code): what a malicious artifact does."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def pickle_artifact(world: World, weights: bytes) -> bytes:
    code = (
        "import os\n"
        f"secret = os.environ.get({SECRET_ENV!r}, '')\n"
        "try:\n"
        f"    secret = secret or open({str(world.secret_file)!r}).read()\n"
        "except OSError:\n"
        "    pass\n"
        "wrote = []\n"
        f"for d in {world.write_dirs()!r}:\n"
        "    try:\n"
        f"        with open(os.path.join(d, '{MARKER}-malicious_pickle'), 'w') as f:\n"
        "            f.write('the pickle ran here ' + secret)\n"
        "        wrote.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "if wrote or secret:\n"
        "    raise RuntimeError('ESCAPED: pickle wrote %r, read %r' % (wrote, secret))\n"
    )
    return pickle.dumps({"payload": _ExecOnLoad(code), "weights": weights})


def zstd_rle_bomb(expanded_bytes: int) -> bytes:
    """A valid zstd frame of 128 KiB RLE blocks (4 bytes each) expanding to `expanded_bytes`."""
    block = 128 << 10
    n = expanded_bytes // block
    header = b"\x28\xb5\x2f\xfd" + bytes([0x00, 7 << 3])  # no content size; window 2**17
    rle = ((block << 3) | (1 << 1)).to_bytes(3, "little") + b"\x00"
    last = ((block << 3) | (1 << 1) | 1).to_bytes(3, "little") + b"\x00"
    return header + rle * (n - 1) + last


def code_files(folder: Path) -> list[str]:
    return tomllib.loads((folder / "submission.toml").read_text())["submission"]["code"]


def code_bytes(folder: Path) -> int:
    return sum((folder / c).stat().st_size for c in code_files(folder))


def padded(path: Path, weights: bytes, size: int) -> None:
    """weights, then a sparse hole up to `size` bytes (cheap for any size)."""
    path.write_bytes(weights)
    os.truncate(path, size)


# ---- assembling and running ---------------------------------------------------------------

def assemble(exp: Expectation, world: World, vocab: int, listeners: Listeners) -> Path:
    """The temporary copy of the case that the harness evaluates."""
    sub = world.submission
    shutil.copytree(CASES_DIR / exp.name, sub, ignore=shutil.ignore_patterns("__pycache__"))
    # the attack's settings (attack.json) travel as a listed file: the
    # sandbox shows the worker only the files the manifest lists
    toml = sub / "submission.toml"
    toml.write_text(re.sub(r'^code = \[', 'code = ["attack.json", ', toml.read_text(), count=1, flags=re.M))
    config = dict(listeners.config(), case=exp.name, write_dirs=world.write_dirs(),
                  secret_files=[str(world.secret_file)], remote=[["pypi.org", 443]],
                  data_guesses=[str(world.dataset_dir), str(world.dataset_dir.parent.parent), str(REPO / "data")],
                  process_tag=world.process_tag, public=public_facts(world))
    (sub / "attack.json").write_text(json.dumps(config, indent=1))
    for name in code_files(sub):
        if (BASE_DIR / name).is_file():
            shutil.copy(BASE_DIR / name, sub / name)
    weights = redteam_base.weights_bytes(case_weights(exp.name, vocab))
    artifact = sub / "artifact.bin"
    if exp.setup == "pickle_artifact":
        artifact.write_bytes(pickle_artifact(world, weights))
    elif exp.setup == "zstd_bomb_artifact":
        artifact.write_bytes(weights + zstd_rle_bomb(32 << 30))
    elif exp.setup in ("pad_to_cap", "pad_over_cap"):
        padded(artifact, weights, CAP - code_bytes(sub) + (exp.setup == "pad_over_cap"))
    else:
        artifact.write_bytes(weights)
    (world.outside / "artifact.bin").write_bytes(weights)
    (world.outside / "predictor.py").write_text((sub / "predictor.py").read_text())
    (world.outside / "helper.py").write_text("VALUE = 1\n")
    if exp.setup == "symlink_artifact":
        artifact.unlink()
        artifact.symlink_to(world.outside / "artifact.bin")
    elif exp.setup == "symlink_entrypoint":
        (sub / "predictor.py").unlink()
        (sub / "predictor.py").symlink_to(world.outside / "predictor.py")
    elif exp.setup == "symlink_code_dir":
        (sub / "lib").symlink_to(world.outside, target_is_directory=True)
    elif exp.setup == "symlink_unlisted_secret":
        (sub / "notes.py").symlink_to(world.secret_file)
    elif exp.setup == "fifo_py":
        os.mkfifo(sub / "notes.py")
    return sub


def public_facts(world: World) -> dict:
    """What any participant knows in advance: the fixed val set's size, the harness defaults."""
    from harness.data.shards import load_val_tokens
    from harness.evaluator import EvalOptions

    defaults = EvalOptions()
    manifest = tomllib.loads((world.submission / "submission.toml").read_text())
    return dict(manifest.get("eval", {}), val_tokens=int(len(load_val_tokens(world.dataset_dir))),
                probe_rate=defaults.probe_rate, seed=defaults.seed)


@dataclass
class Outcome:
    name: str
    submission: Path
    exit: int | None
    stdout: str
    stderr: str
    wall: float
    result: dict | None
    result_text: str
    result_invalid: str
    hits: list[str]
    markers: list[Path]
    survivors: list[str]
    secret_seen_in: list[str]
    run_dir_bytes: int


def harness_command(world: World, exp: Expectation, extra: list[str] = ()) -> list[str]:
    return [sys.executable, str(DRIVER), str(WORKER_MEMORY), "eval", str(world.submission),
            "--data", str(world.dataset_dir), "--tokenizer", str(world.tokenizer),
            "--json", str(world.result_json), "--probe-rate", "1.0",
            "--time-limit", str(exp.time), "--quiet", *exp.args, *extra]


def harness_env(world: World) -> dict:
    return dict(os.environ, **{SECRET_ENV: world.secret, "HOME": str(world.home)})


def secret_places(world: World, texts: dict[str, str]) -> list[str]:
    """Every output and every file of the case (bar the secret file itself) holding the secret."""
    places = [name for name, text in texts.items() if world.secret in text]
    for top in (world.root, world.host_tmp):
        for p in top.rglob("*"):
            if p == world.secret_file or p.is_symlink() or not p.is_file():
                continue
            with open(p, "rb") as f:
                if world.secret.encode() in f.read(64 << 20):
                    places.append(str(p))
    return places


def run_case(exp: Expectation, root: Path, dataset_dir: Path, tokenizer: Path, vocab: int,
             extra: list[str] = ()) -> Outcome:
    world = World(root, dataset_dir, tokenizer)
    listeners = Listeners()
    try:
        assemble(exp, world, vocab, listeners)
        guard = exp.time + 10 + STARTUP_SLACK + 30  # a hung harness is killed here, and fails
        t0 = time.monotonic()
        try:
            proc = subprocess.run(harness_command(world, exp, extra), cwd=world.run_dir, env=harness_env(world),
                                  capture_output=True, timeout=guard)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            code, out, err = None, e.stdout or b"", e.stderr or b""
        wall = time.monotonic() - t0
        time.sleep(0.5)  # let the kernel reap whatever the sandbox's end killed
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        text = world.result_json.read_text() if world.result_json.exists() else ""
        try:
            result = json.loads(text, parse_constant=_reject_constant) if text else None
            invalid = ""
        except ValueError as e:
            result, invalid = None, str(e)
        return Outcome(
            name=exp.name, submission=world.submission, exit=code, stdout=stdout, stderr=stderr, wall=wall, result=result, result_text=text,
            result_invalid=invalid,
            hits=list(listeners.hits), markers=world.marker_files(), survivors=world.survivors(),
            secret_seen_in=secret_places(world, {"stdout": stdout, "stderr": stderr}),
            run_dir_bytes=sum(p.stat().st_size for p in world.run_dir.rglob("*") if p.is_file()),
        )
    finally:
        listeners.close()
        world.cleanup()


def _reject_constant(name: str):
    raise ValueError(f"result JSON holds {name}, which is not JSON")
