"""GPU device nodes are bound into the sandbox only for --device cuda."""

from pathlib import Path

from harness.sandbox import policy as P


def _command(tmp_path: Path, device: str, monkeypatch) -> list[str]:
    fake_nodes = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    monkeypatch.setattr(P.glob, "glob", lambda pattern: fake_nodes if pattern == "/dev/nvidia*" else [])
    sub = tmp_path / "sub"
    sub.mkdir(exist_ok=True)
    scores = tmp_path / "scores.bin"
    scores.touch()
    pol = P.SandboxPolicy(harness_dir=Path(P.__file__).resolve().parents[1], packages={},
                          submission_root=sub, scores_file=scores, device=device)
    return P.bwrap_command(pol)[0]


def test_cuda_binds_the_device_nodes(tmp_path, monkeypatch):
    args = _command(tmp_path, "cuda:0", monkeypatch)
    binds = {args[i + 1] for i, a in enumerate(args) if a == "--dev-bind"}
    assert binds == {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"}
    assert args.index("--dev-bind") < args.index("--remount-ro")  # bound before /dev turns read-only


def test_cpu_binds_no_device_node(tmp_path, monkeypatch):
    args = _command(tmp_path, "cpu", monkeypatch)
    assert "--dev-bind" not in args and not any("nvidia" in a for a in args)
