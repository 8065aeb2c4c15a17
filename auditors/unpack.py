"""Unpack packed code: `exec(lzma.decompress(base64.b85decode(b"...")))` and friends.

Records often ship `train_gpt.py` as a compressed blob that is executed at import
(RULES.md §11 "Packed code"; #1413, #1758). The auditor must read what runs, so the
argument of every `exec`/`eval`/`compile` call is *evaluated* when, and only when, it
is a chain of known pure decoders applied to literals (or to names bound to literals).
Nothing from the file is ever executed: the decoders below are the only callables.
"""

from __future__ import annotations

import ast
import base64
import bz2
import gzip
import lzma
import re
import zlib

MAX_DEPTH = 4
MAX_OUTPUT = 2 * 1024 * 1024  # bytes a decode may produce: a packed script is a few hundred KB; more is a bomb


class TooLarge(Exception):
    """A payload decodes to more than MAX_OUTPUT bytes: it is reported, not audited."""

# (module, function) -> pure decoder
_DECODERS = {
    ("lzma", "decompress"): lzma.decompress,
    ("zlib", "decompress"): zlib.decompress,
    ("gzip", "decompress"): gzip.decompress,
    ("bz2", "decompress"): bz2.decompress,
    ("base64", "b64decode"): base64.b64decode,
    ("base64", "b85decode"): base64.b85decode,
    ("base64", "a85decode"): base64.a85decode,
    ("base64", "b32decode"): base64.b32decode,
    ("base64", "b16decode"): base64.b16decode,
    ("base64", "standard_b64decode"): base64.standard_b64decode,
    ("base64", "urlsafe_b64decode"): base64.urlsafe_b64decode,
    ("base64", "decodebytes"): base64.decodebytes,
}
_RUNNERS = {"exec", "eval", "compile"}
_COMPRESSORS = (zlib.decompress, gzip.decompress, bz2.decompress)


class _NotLiteral(Exception):
    pass


def _import_table(nodes: list[ast.AST]) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, attribute or None) for the imports among `nodes`."""
    table: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                table[a.asname or a.name.split(".")[0]] = (a.name, None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                table[a.asname or a.name] = (node.module, a.name)
    return table


def _literal_names(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names bound once to an expression (candidates for literal chains)."""
    bound: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound[node.targets[0].id] = node.value
    return bound


class _Evaluator:
    def __init__(self, tree: ast.Module, nodes: list[ast.AST]):
        self.nodes, self.names = nodes, _literal_names(tree)
        self._imports = None

    @property
    def imports(self) -> dict[str, tuple[str, str | None]]:
        """Built on first use: most runner calls are not literal chains and never need it."""
        if self._imports is None:
            self._imports = _import_table(self.nodes)
        return self._imports

    def decoder(self, func: ast.expr):
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            mod = self.imports.get(func.value.id, (func.value.id, None))
            if mod[1] is None:
                return _DECODERS.get((mod[0], func.attr))
        if isinstance(func, ast.Name) and func.id in self.imports:
            mod, attr = self.imports[func.id]
            return _DECODERS.get((mod, attr))
        return None

    def value(self, node: ast.expr, depth: int = 0):
        if depth > 32:
            raise _NotLiteral
        if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, str)):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.value(self.names[node.id], depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if type(left) is type(right):
                return left + right
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1 and not node.keywords:
                sep, parts = self.value(func.value, depth + 1), self.value(node.args[0], depth + 1)
                if isinstance(parts, list) and all(type(p) is type(sep) for p in parts):
                    return sep.join(parts)  # "".join(["...", "..."]): a blob split over several literals
            if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode") and not node.keywords:
                base = self.value(func.value, depth + 1)
                enc = self.value(node.args[0], depth + 1) if node.args else "utf-8"
                if func.attr == "decode" and isinstance(base, bytes):
                    return base.decode(enc)
                if func.attr == "encode" and isinstance(base, str):
                    return base.encode(enc)
            dec = self.decoder(func)
            if dec is not None and len(node.args) == 1:
                arg = self.value(node.args[0], depth + 1)
                options = {k.arg: self.option(k.value) for k in node.keywords}
                if dec is lzma.decompress:
                    return _bounded_lzma(arg, **options)
                if dec in _COMPRESSORS and not options:
                    return _bounded(dec, arg)
                if not options:
                    return dec(arg)
        raise _NotLiteral

    def option(self, node: ast.expr):
        """Literal keyword values of a decoder: lzma constants, numbers, lists, dicts."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str, bytes, type(None))):
            return node.value
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            mod = self.imports.get(node.value.id, (node.value.id, None))
            if mod == ("lzma", None) and node.attr.isupper() and isinstance(getattr(lzma, node.attr, None), int):
                return getattr(lzma, node.attr)
        if isinstance(node, ast.List):
            return [self.option(e) for e in node.elts]
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            return {self.option(k): self.option(v) for k, v in zip(node.keys, node.values)}
        raise _NotLiteral


def _bounded_lzma(data: bytes, format=lzma.FORMAT_AUTO, filters=None, memlimit=None) -> bytes:
    d = lzma.LZMADecompressor(format=format, memlimit=memlimit, filters=filters)
    out = d.decompress(data, max_length=MAX_OUTPUT)
    if len(out) >= MAX_OUTPUT:
        raise TooLarge
    return out


def _bounded(dec, data: bytes) -> bytes:
    if dec is zlib.decompress:
        d = zlib.decompressobj()
        out = d.decompress(data, MAX_OUTPUT)
    elif dec is gzip.decompress:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, MAX_OUTPUT)
    else:
        d = bz2.BZ2Decompressor()
        out = d.decompress(data, max_length=MAX_OUTPUT)
    if len(out) >= MAX_OUTPUT:
        raise TooLarge
    return out


# A call of the bare names exec/eval/compile (not `torch.compile(`, not `eval_val(`): files
# without one cannot hold a payload this module unpacks, and need not be parsed here.
# The name is searched without a look-behind (which the regex engine would try at every
# position of the file) and the character before each hit is checked after.
_RUNNER_NAME = re.compile(r"(?:exec|eval|compile)\s*\(")
_NAME_OR_DOT = re.compile(r"[\w.]")


def _has_runner_call(source: str) -> bool:
    for m in _RUNNER_NAME.finditer(source):
        i = m.start()
        if i > 0 and _NAME_OR_DOT.match(source, i - 1):
            continue
        before = source[source.rfind("\n", 0, i) + 1:i]
        if "#" in before and "'" not in before and '"' not in before:
            # A comment (`# sliding window eval (...)`): with no quote before it on the line,
            # the `#` starts one, or the whole line sits inside a multi-line string.
            continue
        return True
    return False


def packed_payloads(source: str, tree: ast.Module | None = None, nodes: list | None = None) -> list[tuple[int, str]]:
    """[(line of the exec, decoded source)] for each exec/eval/compile of a literal chain
    (source None when it decodes to more than MAX_OUTPUT bytes).

    With the module's tree and its nodes in `ast.walk` order (the audit engine has both),
    nothing is parsed or walked again; without, the source is parsed when a runner call
    may be in it."""
    if tree is None and not _has_runner_call(source):
        return []
    if tree is None:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return []
    if nodes is None:
        nodes = list(ast.walk(tree))  # walked once: for the runner calls and, if one is a literal chain, the imports
    ev = _Evaluator(tree, nodes)
    out = []
    for node in nodes:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _RUNNERS and node.args):
            continue
        try:
            payload = ev.value(node.args[0])
        except TooLarge:
            out.append((node.lineno, None))  # executed, yet too large to read: the caller reports it
            continue
        except (_NotLiteral, ValueError, TypeError, lzma.LZMAError, zlib.error, OSError, EOFError, UnicodeError):
            continue
        if isinstance(payload, (str, bytes)) and len(payload) > MAX_OUTPUT:
            out.append((node.lineno, None))
            continue
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                continue
        out.append((node.lineno, payload))
    return out


def layer_name(name: str, i: int) -> str:
    """Display name of the i-th payload (from 0) unpacked from the unit `name`."""
    return f"{name}[unpacked]" if i == 0 else f"{name}[unpacked#{i + 1}]"


def unpack_all(name: str, source: str, depth: int = 0) -> list[tuple[str, str]]:
    """[(display name, source)] of the code packed inside `source`, recursively.

    `train_gpt.py` packing another packed layer yields `train_gpt.py[unpacked]` and
    `train_gpt.py[unpacked][unpacked]`; several blobs in one file get `#2`, `#3`.
    """
    if depth >= MAX_DEPTH:
        return []
    found = []
    for i, (_line, payload) in enumerate(p for p in packed_payloads(source) if p[1] is not None):
        label = layer_name(name, i)
        found.append((label, payload))
        found.extend(unpack_all(label, payload, depth + 1))
    return found
