"""A class or function of a sibling module read off the module's name (`import chunked`,
then `chunked.ChunkedTTT(model, val, ...)`): in the module the importer and the sibling
make together, that is the sibling's own definition, so the data the importer hands it and
the settings it passes reach the sibling's methods."""

from __future__ import annotations

import pytest

from auditors import audit_path


CHUNKED = '''
import torch
import torch.nn.functional as F


class ChunkedTTT:
    def __init__(self, model, tokens, chunk, recheck):
        self.model, self.tokens, self.chunk, self.recheck = model, tokens, chunk, recheck
        self.n = (tokens.numel() - 1) // chunk
        self.nll = [0.0] * self.n

    def score(self, i):
        seg = self.tokens[i * self.chunk: (i + 1) * self.chunk + 1]
        with torch.no_grad():
            return F.cross_entropy(self.model(seg[:-1]), seg[1:], reduction="sum").item()

    def adapt(self, i, opt):
        seg = self.tokens[i * self.chunk: (i + 1) * self.chunk + 1]
        opt.zero_grad()
        F.cross_entropy(self.model(seg[:-1]), seg[1:]).backward()
        opt.step()

    def run(self):
        opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        for i in range(self.n):
            self.nll[i] = self.score(i)
            self.adapt(i, opt)
        if self.recheck:
            for i in range(4):
                self.nll[i] = self.score(i)
        return sum(self.nll) / (self.n * self.chunk)
'''

CHUNKED_ENTRY = '''
import os

import numpy as np
import torch

{imports}


def main():
    val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Embedding(1024, 64), torch.nn.Linear(64, 1024))
    runner = {made}(model, val, 4096, bool(int(os.environ.get("RECHECK", "1"))))
    print(runner.run())


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("imports, made", [("import chunked", "chunked.ChunkedTTT"), ("import chunked as ttt", "ttt.ChunkedTTT"),
                                           ("from evalkit import chunked", "chunked.ChunkedTTT"),
                                           ("from chunked import ChunkedTTT", "ChunkedTTT")])
@pytest.mark.parametrize("recheck, reach", [(None, "active"), ("0", "dormant")])
def test_a_class_built_through_its_module_name_is_analysed_with_the_tokens_the_entry_hands_it(
        tmp_path, monkeypatch, imports, made, recheck, reach):
    """`chunked.ChunkedTTT(model, val, ...)`: the merged module reads the class off the module
    name as its own definition, so its methods see the validation tokens, and the rescoring of
    the first chunks after TTT is found, reached where the entry's `RECHECK` is on."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "chunked.py").write_text(CHUNKED)
    (tmp_path / "train_gpt.py").write_text(CHUNKED_ENTRY.format(imports=imports, made=made))
    line = CHUNKED.splitlines().index("                self.nll[i] = self.score(i)") + 1
    env = {"RECHECK": recheck} if recheck else None
    found = [(f.path, f.line, f.reach) for f in audit_path(tmp_path, env=env).findings if f.severity == "error"]
    assert found == [("chunked.py", line, reach)]
