"""`harness data`: build the embedded corpus, download FineWeb, or check shards.

    harness data build [--data-dir DIR]
    harness data fineweb [--variant sp1024] [--train-shards N] [--data-dir DIR]
    harness data check PATH... [--vocab-size V]
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import BadInput

DEFAULT_DATA_DIR = "data"  # same as harness.data.corpus.DEFAULT_DATA_DIR, kept import-free here


def configure(parser):
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True

    build = sub.add_parser("build", help="build the embedded corpus and tokenizer (cached)")
    build.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR))
    build.set_defaults(_action=_build)

    fineweb = sub.add_parser("fineweb", help="download the challenge's FineWeb shards and tokenizer")
    fineweb.add_argument("--variant", default="sp1024", help="tokenizer family, e.g. sp1024")
    fineweb.add_argument("--train-shards", type=int, default=80,
                         help="training shards to download (100M tokens each; default 80)")
    fineweb.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR))
    fineweb.set_defaults(_action=_fineweb)

    check = sub.add_parser("check", help="validate shards (files or dataset folders)")
    check.add_argument("paths", nargs="+", type=Path)
    check.add_argument("--vocab-size", type=int, default=None,
                       help="also require every token id to be below this")
    check.set_defaults(_action=_check)


def run(args) -> int:
    return args._action(args)


def _build(args) -> int:
    from harness.data.corpus import ensure_embedded

    ensure_embedded(args.data_dir)
    return 0


def _fineweb(args) -> int:
    from harness.data.fineweb import download

    download(args.data_dir, variant=args.variant, train_shards=args.train_shards)
    return 0


def _check(args) -> int:
    from harness.data.shards import read_shard

    files = []
    for path in args.paths:
        if path.is_dir():
            found = sorted(path.glob("*.bin"))
            if not found:
                raise BadInput(f"{path}: no .bin shards in this folder")
            files.extend(found)
        else:
            files.append(path)
    total = 0
    for path in files:
        n = len(read_shard(path, args.vocab_size))
        total += n
        print(f"{path}: ok, {n} tokens")
    print(f"{len(files)} shards, {total} tokens")
    return 0
