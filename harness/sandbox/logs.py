"""Bounded capture of the worker's stdout/stderr: a flood fills neither memory nor disk."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

LOG_CAP_BYTES = 1 << 20  # what reaches the log file; the rest is drained and counted
TAIL_BYTES = 4096  # what the report can quote


class BoundedLog:
    def __init__(self, path: Path, cap: int = LOG_CAP_BYTES):
        self.path = Path(path)
        self.cap = cap
        self.written = 0
        self.dropped = 0
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self._thread: threading.Thread | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")

    def drain(self, stream) -> None:
        """Copy `stream` (a pipe) in a background thread until it closes."""
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        while True:
            block = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not block:
                break
            keep = block[: max(0, self.cap - self.written)]
            if keep:
                self._file.write(keep)
                self._file.flush()
                self.written += len(keep)
            self.dropped += len(block) - len(keep)
            self._tail.append(block[-TAIL_BYTES:])
            self._tail_len += len(self._tail[-1])
            while self._tail_len - len(self._tail[0]) >= TAIL_BYTES:
                self._tail_len -= len(self._tail.popleft())
        stream.close()

    def tail(self) -> str:
        text = b"".join(list(self._tail))[-TAIL_BYTES:].decode("utf-8", "replace")
        if self.dropped:
            text += f"\n[{self.dropped} more bytes of worker output were dropped]"
        return text

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._file.close()
