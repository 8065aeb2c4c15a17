"""The worker: the only place submission code runs (inside the sandbox).

Started as `python -I -c <bootstrap>` by harness.sandbox.launcher. It imports the
submission's entrypoint, calls load(artifact, device), answers READY, then serves
requests from the request pipe (protocol.py): score() results are checked for type and
shape, cast to float32 and written to the scores file; errors go back as text.
Nothing here is trusted by the harness: it re-validates every number it reads.
"""

from __future__ import annotations

import argparse
import importlib.util
import mmap
import os
import sys
import traceback

from harness.sandbox import protocol as P


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError("request pipe closed")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _error_text(e: BaseException) -> str:
    """Exception and the last frames, for the run report."""
    tb = traceback.format_exception(type(e), e, e.__traceback__, limit=-3)
    return f"{type(e).__name__}: {e}\n{''.join(tb)[-2000:]}"


def _import_entrypoint(path: str):
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)  # the submission may import its own sibling modules
    spec = importlib.util.spec_from_file_location("submission_entrypoint", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission_entrypoint"] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "load", None)):
        raise TypeError(f"{os.path.basename(path)} defines no load(artifact_path, device)")
    return module


def _scores_array(out, torch, rows: int, n_last: int, vocab: int):
    """score()'s result as a C-contiguous float32 numpy array, or TypeError/ValueError."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"score() returned {type(out).__name__}, expected a torch.Tensor")
    if not out.is_floating_point():
        raise TypeError(f"score() returned dtype {out.dtype}, expected a floating point tensor")
    if tuple(out.shape) != (rows, n_last, vocab):
        raise ValueError(f"score() returned shape {tuple(out.shape)}, expected {(rows, n_last, vocab)}")
    return out.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()


def serve(args) -> int:
    req_fd, resp_fd = args.req_fd, args.resp_fd
    import numpy as np
    import torch

    _write_all(resp_fd, P.encode_response(P.STATUS_HELLO, 0))
    try:
        module = _import_entrypoint(args.entrypoint)
        predictor = module.load(args.artifact, args.device)
        score = getattr(predictor, "score", None)
        if not callable(score):
            raise TypeError("load() returned an object without score(tokens, n_last)")
        observe = getattr(predictor, "observe", None)
    except BaseException as e:  # report why load failed; the harness rejects the run
        _write_all(resp_fd, P.encode_response(P.STATUS_ERROR, 0, message=f"load failed: {_error_text(e)}"))
        return 1
    _write_all(resp_fd, P.encode_response(P.STATUS_READY, 0, rows=int(callable(observe)), vocab=args.vocab))

    scores_fd = os.open(args.scores, os.O_RDWR)
    scores = mmap.mmap(scores_fd, args.capacity)
    while True:
        try:
            req = P.decode_request(_read_exact(req_fd, P.REQUEST.size))
        except EOFError:
            return 0
        if req.op == P.OP_SHUTDOWN:
            return 0
        payload = _read_exact(req_fd, 4 * req.rows * req.length)
        tokens = torch.from_numpy(np.frombuffer(payload, dtype="<i4").astype(np.int64).reshape(req.rows, req.length))
        try:
            if req.op == P.OP_OBSERVE:
                if callable(observe):
                    observe(tokens[0].to(args.device))
                _write_all(resp_fd, P.encode_response(P.STATUS_OK, req.seq))
                continue
            # no_grad, not inference_mode: tensors a predictor caches while scoring (RoPE
            # tables, say) must stay usable by the training its observe() may do later.
            with torch.no_grad():
                out = score(tokens.to(args.device), req.n_last)
            arr = _scores_array(out, torch, req.rows, req.n_last, args.vocab)
            if P.SCORES.size + arr.nbytes > args.capacity:
                raise ValueError(f"{arr.nbytes} bytes of scores exceed the transport capacity")
            scores[: P.SCORES.size] = P.encode_scores_header(req.seq, req.rows, req.n_last, args.vocab)
            np.frombuffer(scores, dtype="<f4", count=arr.size, offset=P.SCORES.size)[:] = arr.reshape(-1)
            _write_all(resp_fd, P.encode_response(P.STATUS_OK, req.seq, req.rows, req.n_last, args.vocab))
        except Exception as e:
            what = "observe" if req.op == P.OP_OBSERVE else "score"
            _write_all(resp_fd, P.encode_response(P.STATUS_ERROR, req.seq, message=f"{what} failed: {_error_text(e)}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness-worker")
    parser.add_argument("--entrypoint", required=True)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--scores", required=True)
    parser.add_argument("--capacity", type=int, required=True)
    parser.add_argument("--vocab", type=int, required=True)
    parser.add_argument("--req-fd", type=int, required=True)
    parser.add_argument("--resp-fd", type=int, required=True)
    args = parser.parse_args(argv)
    sys.stdin.close()  # requests only come through the request pipe
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
