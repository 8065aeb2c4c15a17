"""Size accounting: code bytes + artifact bytes against the 16,000,000-byte cap (decimal).

Code bytes are the files the submission lists in `code` plus every .py file of each
package it declares in `packages` (those ship with the submission in spirit: the
predictor imports them). Trusted code: packages are located with importlib's finder,
which reads no package code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.submission import Submission

SIZE_CAP_BYTES = 16_000_000


@dataclass(frozen=True)
class SizeReport:
    code_bytes: int
    model_bytes: int
    cap_bytes: int = SIZE_CAP_BYTES

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + self.model_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.cap_bytes


def package_dir(name: str) -> Path:
    """Source folder of an installed top-level package; BadInput if it is not one."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise BadInput(f"submission.toml: package {name!r} cannot be located: {e}") from None
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(f"submission.toml: package {name!r} is not an installed package (a folder with modules)")
    locations = list(spec.submodule_search_locations)
    if len(locations) != 1:
        raise BadInput(f"submission.toml: package {name!r} spans several folders {locations}; declare a regular package")
    return Path(locations[0]).resolve()


def package_py_files(name: str) -> list[Path]:
    root = package_dir(name)
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts and p.is_file())


def measure(sub: Submission) -> SizeReport:
    """Code and model bytes of a checked submission."""
    files = set(sub.code)
    for pkg in sub.packages:
        files.update(package_py_files(pkg))
    code = sum(f.stat().st_size for f in files)
    return SizeReport(code_bytes=code, model_bytes=sub.artifact.stat().st_size)
