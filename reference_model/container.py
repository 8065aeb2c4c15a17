"""Tensor container: the byte format of artifacts and checkpoints (docs/ARTIFACT.md).

Never a pickle. Layout:

    magic b"PGOLFTC\\0" | u32 version | u64 payload size | zstd(payload)
    payload = u64 header length | header JSON (UTF-8) | tensor data
    header  = {"meta": <JSON>, "tensors": [{"name", "dtype", "shape", "offset", "nbytes"}]}

Tensor data are raw little-endian buffers laid out back to back in header order.
`read_container` validates every field and raises BadInput naming the file; the
payload size it declares bounds decompression (no zstd bomb can exceed it).
"""

from __future__ import annotations

import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
import zstandard

from harness.atomic import atomic_write_bytes
from harness.errors import BadInput

MAGIC = b"PGOLFTC\0"
VERSION = 1
_PREFIX = struct.Struct("<8sIQ")
# torch dtype name -> (torch dtype, little-endian numpy dtype of its bytes)
DTYPES = {
    "float32": (torch.float32, "<f4"),
    "float16": (torch.float16, "<f2"),
    "bfloat16": (torch.bfloat16, "<i2"),  # numpy has no bf16: moved as its raw 16 bits
    "int64": (torch.int64, "<i8"),
    "int32": (torch.int32, "<i4"),
    "int16": (torch.int16, "<i2"),
    "int8": (torch.int8, "i1"),
    "uint8": (torch.uint8, "u1"),
    "bool": (torch.bool, "?"),
}
_NAME_OF = {t: name for name, (t, _) in DTYPES.items()}


def _tensor_bytes(t: torch.Tensor) -> tuple[str, bytes]:
    name = _NAME_OF.get(t.dtype)
    if name is None:
        raise ValueError(f"container: unsupported dtype {t.dtype}")
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return name, t.numpy().astype(DTYPES[name][1], copy=False).tobytes()


def encode_container(tensors: dict[str, torch.Tensor], meta: dict, level: int = 16) -> bytes:
    entries, chunks, offset = [], [], 0
    for name, t in tensors.items():
        dtype, raw = _tensor_bytes(t)
        entries.append({"name": name, "dtype": dtype, "shape": list(t.shape), "offset": offset, "nbytes": len(raw)})
        chunks.append(raw)
        offset += len(raw)
    header = json.dumps({"meta": meta, "tensors": entries}, separators=(",", ":")).encode("utf-8")
    payload = struct.pack("<Q", len(header)) + header + b"".join(chunks)
    compressed = zstandard.ZstdCompressor(level=level).compress(payload)
    return _PREFIX.pack(MAGIC, VERSION, len(payload)) + compressed


def write_container(path, tensors: dict[str, torch.Tensor], meta: dict, level: int = 16) -> int:
    blob = encode_container(tensors, meta, level)
    atomic_write_bytes(path, blob)
    return len(blob)


def _bad(path, why: str) -> BadInput:
    return BadInput(f"{path}: not a valid tensor container ({why})")


def decode_container(blob: bytes, path="<bytes>", max_payload: int = 1 << 30) -> tuple[dict[str, torch.Tensor], dict]:
    if len(blob) < _PREFIX.size:
        raise _bad(path, "truncated before the header")
    magic, version, size = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise _bad(path, "wrong magic")
    if version != VERSION:
        raise _bad(path, f"unsupported version {version}")
    if size > max_payload:
        raise _bad(path, f"declared payload {size} bytes exceeds the limit {max_payload}")
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob[_PREFIX.size:]))
        payload = reader.read(size + 1)  # bounded by the declared size, whatever the frame says
    except zstandard.ZstdError as e:
        raise _bad(path, f"zstd: {e}") from None
    if len(payload) != size:
        raise _bad(path, f"payload is {len(payload)} bytes, header declares {size}")
    if size < 8:
        raise _bad(path, "payload too short")
    (header_len,) = struct.unpack_from("<Q", payload)
    if header_len > size - 8:
        raise _bad(path, "header length beyond the payload")
    try:
        header = json.loads(payload[8:8 + header_len].decode("utf-8"))
        meta, entries = header["meta"], header["tensors"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise _bad(path, f"header: {e}") from None
    data = memoryview(payload)[8 + header_len:]
    return _read_tensors(entries, data, path), meta


def _read_tensors(entries, data: memoryview, path) -> dict[str, torch.Tensor]:
    if not isinstance(entries, list):
        raise _bad(path, "tensor list is not a list")
    tensors, expected_offset = {}, 0
    for e in entries:
        try:
            name, dtype, shape, offset, nbytes = e["name"], e["dtype"], e["shape"], e["offset"], e["nbytes"]
        except (KeyError, TypeError):
            raise _bad(path, f"malformed tensor entry {e!r:.80}") from None
        if not isinstance(name, str) or name in tensors:
            raise _bad(path, f"bad or duplicate tensor name {name!r:.80}")
        if dtype not in DTYPES:
            raise _bad(path, f"tensor {name}: unknown dtype {dtype!r:.40}")
        if not isinstance(shape, list) or not all(isinstance(s, int) and 0 <= s < 2**40 for s in shape):
            raise _bad(path, f"tensor {name}: bad shape")
        torch_dtype, np_dtype = DTYPES[dtype]
        if offset != expected_offset or nbytes != math.prod(shape) * np.dtype(np_dtype).itemsize:
            raise _bad(path, f"tensor {name}: offset/size inconsistent with its shape")
        if offset + nbytes > len(data):
            raise _bad(path, f"tensor {name}: data truncated")
        arr = np.frombuffer(data[offset:offset + nbytes], dtype=np_dtype).reshape(shape)
        t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
        tensors[name] = t.view(torch.bfloat16) if torch_dtype == torch.bfloat16 else t
        expected_offset = offset + nbytes
    if expected_offset != len(data):
        raise _bad(path, "trailing bytes after the last tensor")
    return tensors


def read_container(path, max_payload: int = 1 << 30) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    return decode_container(blob, path, max_payload)


# Nested Python structures (optimizer state, RNG state) <-> JSON meta + named tensors.

def flatten_tree(obj, tensors: dict[str, torch.Tensor], prefix: str = "t"):
    """JSON-able copy of `obj` with every tensor moved into `tensors` and referenced by name."""
    if isinstance(obj, torch.Tensor):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {"__items__": [[flatten_tree(k, tensors, prefix), flatten_tree(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [flatten_tree(v, tensors, prefix) for v in obj], "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a container")


def unflatten_tree(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {unflatten_tree(k, tensors): unflatten_tree(v, tensors) for k, v in obj["__items__"]}
        if "__list__" in obj:
            items = [unflatten_tree(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj["tuple"] else items
    return obj
