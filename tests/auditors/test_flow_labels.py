"""Where data splits flow: the labels the data-flow pass gives names, on code made here."""

from __future__ import annotations

import ast
import textwrap

import pytest

from auditors.analysis import ModuleFlow


def labels(source: str, func: str, name: str) -> set[str]:
    source = textwrap.dedent(source)
    m = ModuleFlow(source, ast.parse(source))
    return set(m.functions[func].lookup(name)) & {"VAL", "TRAIN"}


def test_a_path_edited_from_one_split_to_the_other_names_the_new_split():
    src = '''
    import glob
    def main():
        val_glob = "data/fineweb_val_*.bin"
        train_glob = val_glob.replace("_val_", "_train_")
        same = val_glob.replace("data/", "/mnt/data/")
    '''
    assert labels(src, "main", "train_glob") == {"TRAIN"}
    assert labels(src, "main", "same") == {"VAL"}


@pytest.mark.parametrize("fill", ["counts.index_put_((x, y), ones, accumulate=True)",
                                  "counts.index_add_(0, y, ones)",
                                  "np.add.at(counts, y, 1)"])
def test_a_table_filled_in_place_holds_the_data_it_counts(fill):
    src = f'''
    import numpy as np, torch
    def main():
        toks = np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)
        x, y = toks[:-1], toks[1:]
        ones = torch.ones(len(y))
        counts = torch.zeros(1024, 1024)
        {fill}
    '''
    assert labels(src, "main", "counts") == {"VAL"}


def test_instances_of_one_class_keep_their_own_split():
    src = '''
    import glob
    class Pool:
        def __init__(self, pattern):
            self.files = sorted(glob.glob(pattern))
        def tokens(self):
            return [open(p, "rb").read() for p in self.files]
    def main():
        tr, va = Pool("data/fineweb_train_*.bin"), Pool("data/fineweb_val_*.bin")
        a = tr.tokens()
        b = va.tokens()
    '''
    assert labels(src, "main", "a") == {"TRAIN"}
    assert labels(src, "main", "b") == {"VAL"}


def test_a_dict_keeps_each_constant_key_apart():
    src = '''
    class Args:
        files = {"fit": "data/fineweb_train_*.bin", "score": "data/fineweb_val_*.bin"}
    def main(args):
        local = {"fit": "data/fineweb_train_*.bin", "score": "data/fineweb_val_*.bin"}
        a, b = local["fit"], args.files["fit"]
        c = local["score"]
    '''
    assert labels(src, "main", "a") == {"TRAIN"} and labels(src, "main", "b") == {"TRAIN"}
    assert labels(src, "main", "c") == {"VAL"}


def test_a_method_called_on_an_object_built_in_place_carries_its_split():
    src = '''
    import glob
    class Stream:
        def __init__(self, pattern):
            self.files = sorted(glob.glob(pattern))
        def take(self, n):
            return [open(p, "rb").read(n) for p in self.files]
    def main():
        a = Stream("data/fineweb_val_*.bin").take(10)
        b = Stream("data/fineweb_train_*.bin").take(10)
    '''
    assert labels(src, "main", "a") == {"VAL"}
    assert labels(src, "main", "b") == {"TRAIN"}


def all_labels(source: str, func: str, name: str) -> set[str]:
    source = textwrap.dedent(source)
    m = ModuleFlow(source, ast.parse(source))
    return set(m.functions[func].lookup(name))


def test_a_weighted_sum_of_probabilities_is_a_mixture_and_a_sum_of_token_products_a_hash():
    src = '''
    import numpy as np, torch
    def main(model, lam=0.3):
        toks = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
        p_lm = torch.softmax(model(toks[None, :-1])[0], -1)
        p_uni = torch.bincount(toks, minlength=1024).float() / toks.numel()
        mixed = (1 - lam) * p_lm + lam * p_uni
        key = toks[:-1] * 1000003 + toks[1:] * 998244353
    '''
    assert "HASH" not in all_labels(src, "main", "mixed") and "DIST" in all_labels(src, "main", "mixed")
    assert "HASH" in all_labels(src, "main", "key")


def test_a_library_function_is_never_the_files_own_function_of_that_name():
    """`torch.log(p)` in a file that defines `def log(msg)` for printing keeps p's labels."""
    src = '''
    import numpy as np, torch
    def log(msg):
        print(msg)
    def main(model):
        toks = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
        p = torch.softmax(model(toks[None, :-1])[0], -1).gather(1, toks[1:, None])
        nll = -torch.log(p)
    '''
    assert {"TGTP", "VAL"} <= all_labels(src, "main", "nll")


def test_an_attribute_of_a_library_module_is_never_a_method_of_the_files_classes():
    """`os.environ.get(k)` in a file whose loader class has a `get` method returning
    validation tokens reads the environment, not the tokens."""
    src = '''
    import os
    import numpy as np
    class Stream:
        def get(self, n):
            return np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)[:n]
    def setting(name, default):
        raw = os.environ.get(name)
        return default if raw is None else type(default)(raw)
    def main():
        seq = setting("SEQ_LEN", 1024)
        toks = Stream().get(seq)
    '''
    assert all_labels(src, "main", "seq") == set()
    assert "VAL" in all_labels(src, "main", "toks")


def test_window_starts_computed_from_the_size_of_the_data_are_no_tokens():
    """`windows(val.size - 1, ...)` yields window starts: `starts[k - 1]` beside `starts[k]`
    is arithmetic on positions, not a token read beside its context (numpy's `.size` is a
    count, like `.shape`)."""
    src = textwrap.dedent('''
    import numpy as np

    def windows(n, seq, stride):
        starts = list(range(0, n - seq + 1, stride))
        if starts[-1] != n - seq:
            starts.append(n - seq)
        for k in range(len(starts)):
            yield starts[k], 0 if k == 0 else starts[k - 1] + seq - starts[k]

    def main():
        val = np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)
        it = windows(val.size - 1, 1024, 512)
        group = [w for w in it]
    ''')
    m = ModuleFlow(src, ast.parse(src))
    assert not set(m.functions["main"].lookup("it")) & {"VAL", "TGT"}
    assert not set(m.functions["windows"].ret) & {"VAL", "TGT"}


def test_a_parameter_bound_again_still_holds_what_callers_pass():
    """`arr = np.asarray(arr)` at the top of a helper: the callers' split flows through it,
    also when the helper was analysed before any caller was."""
    src = '''
    import numpy as np
    def table(arr, top=8):
        arr = np.asarray(arr, dtype=np.int64)
        return np.bincount(arr)[:top]
    def main():
        val = np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16)
        counts = table(val[:1000])
    '''
    assert labels(src, "main", "counts") == {"VAL"}
    assert labels(src, "table", "arr") == {"VAL"}


def test_a_filter_on_a_substring_of_the_item_keeps_the_split_and_a_lookup_in_held_out_names_drops_it():
    src = '''
    import glob
    from pathlib import Path
    def main():
        val = [p for p in sorted(glob.glob("data/fineweb_val_*.bin")) if "_bytes_" not in Path(p).name]
        held = {Path(p).name for p in glob.glob("data/fineweb_val_*.bin")}
        train = [p for p in sorted(glob.glob("data/fineweb_*.bin")) if Path(p).name not in held]
        folder = [p for p in sorted(glob.glob("data/fineweb_*.bin")) if "val" not in Path(p).parent.name]
    '''
    assert labels(src, "main", "val") == {"VAL"}
    assert labels(src, "main", "train") == {"TRAIN"}
    assert labels(src, "main", "folder") == {"VAL", "TRAIN"}
