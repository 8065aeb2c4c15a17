"""Starting the worker (under bubblewrap unless told otherwise) and talking to it.

The parent side of the transport: requests go down a non-blocking pipe, replies come
back on another pipe, scores through a file in a private temporary folder that only
this run and its worker can see. Every wait has a deadline (the wall-clock watchdog);
a worker that dies, hangs or sends garbage becomes a WorkerFailure with a reason.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.sandbox import protocol as P
from harness.sandbox.logs import BoundedLog
from harness.sandbox.policy import SandboxPolicy, bwrap_command, scrubbed_env
from harness.sandbox.seccomp import filter_fd

FSIZE_FLOOR = 64 << 20  # files in the sandbox's own /tmp (caches) may be this large


class WorkerFailure(Exception):
    """The worker died, hung, broke the protocol or reported an error: the run is rejected."""


@dataclass
class WorkerSpec:
    entrypoint: Path
    artifact: Path
    submission_root: Path
    packages: dict[str, Path]  # import name -> source folder
    device: str
    vocab: int
    capacity_values: int  # largest rows * n_last * vocab of any request
    sandbox: bool
    forbidden: list[Path] = field(default_factory=list)  # folders never to expose (data, runs)
    memory_bytes: int | None = 16 << 30
    cpu_seconds: int = 3600
    log_path: Path | None = None
    files: tuple[Path, ...] = ()  # the files of the submission folder the worker sees (all when empty)


_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv.pop(1)); from harness.sandbox.worker import main; sys.exit(main(sys.argv[1:]))"


class WorkerChannel:
    """One running worker. Use as a context manager; close() always cleans up."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.seq = 0
        self.has_observe = False
        self._tmp = Path(tempfile.mkdtemp(prefix="pgolf-eval-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
        self._capacity = P.SCORES.size + 4 * spec.capacity_values
        self._scores_path = self._tmp / "scores.bin"
        with open(self._scores_path, "wb") as f:
            f.truncate(self._capacity)
        self._scores_fd = os.open(self._scores_path, os.O_RDONLY)
        self._buffer = bytearray(self._capacity)
        self.log = BoundedLog(spec.log_path or self._tmp / "worker.log")
        self.proc: subprocess.Popen | None = None

    # ---- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        spec = self.spec
        harness_parent = Path(__file__).resolve().parents[2]
        keep = []
        if spec.sandbox:
            seccomp_fd = filter_fd()
            if seccomp_fd is not None:
                keep.append(seccomp_fd)
            policy = SandboxPolicy(
                harness_dir=harness_parent / "harness", packages=spec.packages,
                submission_root=spec.submission_root, scores_file=self._scores_path,
                device=spec.device, forbidden=spec.forbidden, files=list(spec.files), seccomp_fd=seccomp_fd,
            )
            prefix, mounts = bwrap_command(policy)
            inside = lambda p: str(Path(mounts["submission"]) / p.relative_to(spec.submission_root))  # noqa: E731
            pythonpath, scores = str(policy.code_root), mounts["scores"]
        else:
            prefix, inside = [], str
            pythonpath, scores = str(harness_parent), str(self._scores_path)
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        os.set_blocking(self._req_w, False)
        cmd = prefix + [sys.executable, "-I", "-c", _BOOTSTRAP, pythonpath,
                        "--entrypoint", inside(spec.entrypoint), "--artifact", inside(spec.artifact),
                        "--device", spec.device, "--scores", scores,
                        "--capacity", str(self._capacity), "--vocab", str(spec.vocab),
                        "--req-fd", str(req_r), "--resp-fd", str(resp_w)]
        limits = self._rlimits()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(req_r, resp_w, *keep), env=scrubbed_env(spec.device), cwd=self._tmp,
                start_new_session=True, preexec_fn=lambda: _apply_rlimits(limits),
            )
        finally:
            for fd in (req_r, resp_w, *keep):
                os.close(fd)
        self.log.drain(self.proc.stdout)

    def _rlimits(self) -> list[tuple[int, int]]:
        limits = [
            (resource.RLIMIT_CPU, self.spec.cpu_seconds),
            (resource.RLIMIT_NOFILE, 1024),
            # the scores file lives in the host's /dev/shm: no file may grow past what a reply needs
            (resource.RLIMIT_FSIZE, max(self._capacity, FSIZE_FLOOR)),
            (resource.RLIMIT_NPROC, 4096),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.spec.memory_bytes is not None:
            limits.append((resource.RLIMIT_AS, self.spec.memory_bytes))
        return limits

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            try:
                self._send(P.encode_request(P.Request(P.OP_SHUTDOWN, self.seq + 1, 0, 0, 0)), time.monotonic() + 2, "shutdown")
                self.proc.wait(timeout=5)
            except (WorkerFailure, subprocess.TimeoutExpired, OSError):
                pass
            self.kill()
        for fd in ("_req_w", "_resp_r", "_scores_fd"):
            if hasattr(self, fd):
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                delattr(self, fd)
        self.log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ---- freezing between calls ----------------------------------------------------
    # The worker runs only while the harness waits for one of its replies: between calls
    # every process of it is stopped (SIGSTOP), so a thread started by observe() or
    # score() cannot go on computing in time nobody counts (while the harness scores,
    # replays or waits on the other worker), and the two workers never run at once.
    def _tree(self) -> list[int]:
        """The worker's processes (bwrap and every descendant)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        return found

    def _signal_tree(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        done: set[int] = set()
        while True:  # a process forked while its parent was being stopped is caught next round
            pids = [p for p in self._tree() if p not in done]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            done.update(pids)

    def pause(self) -> None:
        self._signal_tree(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- transport -------------------------------------------------------------
    def _fail(self, what: str) -> WorkerFailure:
        """Stop the worker and describe why, with its exit status when it died."""
        status = ""
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None and code < 0:
                status = f" (worker killed by signal {signal.Signals(-code).name})"
            elif code is not None:
                status = f" (worker exited with code {code})"
        self.kill()
        return WorkerFailure(what + status)

    def _send(self, data: bytes, deadline: float, doing: str) -> None:
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._req_w], [], left)[1]:
                raise self._fail(f"time limit exceeded during {doing} (worker stopped reading its requests)")
            try:
                view = view[os.write(self._req_w, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                # the same words as a closed reply pipe: which end the dying worker's
                # closing shows first is a race, the cause is one
                raise self._fail(f"worker died during {doing} (closed its request pipe)") from None

    def _recv(self, n: int, deadline: float, doing: str) -> bytes:
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                self.kill()
                raise WorkerFailure(f"time limit exceeded during {doing}")
            b = os.read(self._resp_r, n - len(out))
            if not b:
                raise self._fail(f"worker died during {doing}")
            out += b
        return bytes(out)

    def _reply(self, deadline: float, doing: str, seq: int) -> tuple[int, int, int, int]:
        try:
            status, got_seq, rows, n_last, vocab, msg_len = P.decode_response_header(
                self._recv(P.RESPONSE.size, deadline, doing))
        except P.ProtocolError as e:
            raise self._fail(f"garbage from worker during {doing}: {e}") from None
        message = self._recv(msg_len, deadline, doing).decode("utf-8", "replace") if msg_len else ""
        if status == P.STATUS_ERROR:
            raise self._fail(f"{doing}: {_printable(message)}")
        if got_seq != seq:
            raise self._fail(f"garbage from worker during {doing}: reply to request {got_seq}, expected {seq}")
        return status, rows, n_last, vocab

    def wait_started(self, deadline: float) -> None:
        """Until the worker has imported its libraries (not counted against the time limit)."""
        status, _, _, _ = self._reply(deadline, "worker start-up", 0)
        if status != P.STATUS_HELLO:
            raise self._fail(f"garbage from worker during start-up: status {status}")

    def wait_ready(self, deadline: float) -> bool:
        status, rows, _, vocab = self._reply(deadline, "load()", 0)
        if status != P.STATUS_READY or vocab != self.spec.vocab:
            raise self._fail(f"garbage from worker during load(): status {status}, vocab {vocab}")
        self.has_observe = rows == 1
        self.pause()
        return self.has_observe

    def score(self, tokens: np.ndarray, n_last: int, deadline: float, doing: str) -> np.ndarray:
        """Validated float32 scores [rows, n_last, vocab] for int tokens [rows, length].

        The array is a view of a buffer the next call reuses: consume it first.
        """
        rows, length = tokens.shape
        self.seq += 1
        self.resume()
        try:
            self._send(P.encode_request(P.Request(P.OP_SCORE, self.seq, rows, length, n_last))
                       + np.ascontiguousarray(tokens, dtype="<i4").tobytes(), deadline, doing)
            status, got_rows, got_n, got_vocab = self._reply(deadline, doing, self.seq)
        finally:
            self.pause()
        vocab = self.spec.vocab
        if status != P.STATUS_OK or (got_rows, got_n, got_vocab) != (rows, n_last, vocab):
            raise self._fail(f"{doing}: wrong shape ({got_rows}, {got_n}, {got_vocab}), expected ({rows}, {n_last}, {vocab})")
        size = P.SCORES.size + 4 * rows * n_last * vocab
        view = memoryview(self._buffer)[:size]
        got = os.preadv(self._scores_fd, [view], 0)  # a copy: the worker cannot change it afterwards
        if got != size:
            raise self._fail(f"{doing}: scores file holds {got} bytes, expected {size}")
        try:
            P.check_scores_header(bytes(view[: P.SCORES.size]), self.seq, rows, n_last, vocab)
        except P.ProtocolError as e:
            raise self._fail(f"{doing}: {e}") from None
        values = np.frombuffer(self._buffer, dtype="<f4", count=rows * n_last * vocab, offset=P.SCORES.size)
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            row, rest = divmod(bad, n_last * vocab)
            raise self._fail(f"{doing}: non-finite score {values[bad]} at row {row}, position {rest // vocab}, token {rest % vocab}")
        return values.reshape(rows, n_last, vocab)

    def observe(self, tokens: np.ndarray, deadline: float, doing: str) -> None:
        self.seq += 1
        self.resume()
        try:
            self._send(P.encode_request(P.Request(P.OP_OBSERVE, self.seq, 1, len(tokens), 0))
                       + np.ascontiguousarray(tokens, dtype="<i4").tobytes(), deadline, doing)
            self._reply(deadline, doing, self.seq)
        finally:
            self.pause()


def _apply_rlimits(limits: list[tuple[int, int]]) -> None:
    """In the child before exec: only setrlimit (async-signal-safe enough for preexec)."""
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def _printable(text: str, limit: int = 1500) -> str:
    cleaned = "".join(c if c.isprintable() or c == "\n" else "?" for c in text)
    return cleaned[-limit:].strip()
