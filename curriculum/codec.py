"""Safe (no pickle) bytes encoding of state dicts: JSON for structure, .npy blobs for numpy arrays."""
from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np

_SCALARS = (str, int, float, bool)


def encode(state: Any) -> bytes:
    arrays: list[np.ndarray] = []

    def walk(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            arrays.append(x)
            return {"__nd__": len(arrays) - 1}
        if isinstance(x, dict):
            return {"__d__": [[walk(k), walk(v)] for k, v in x.items()]}
        if isinstance(x, (list, tuple)):
            if all(v is None or type(v) in _SCALARS for v in x):  # columns of 10^6 strings: no per-element walk
                return list(x)
            return [walk(v) for v in x]
        if isinstance(x, np.generic):
            return x.item()
        return x

    head = json.dumps(walk(state)).encode()
    out = io.BytesIO()
    out.write(struct.pack("<II", len(head), len(arrays)))
    out.write(head)
    for a in arrays:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
        b = buf.getvalue()
        out.write(struct.pack("<Q", len(b)))
        out.write(b)
    return out.getvalue()


def decode(data: bytes) -> Any:
    hlen, n = struct.unpack_from("<II", data, 0)
    pos = 8
    head = json.loads(data[pos: pos + hlen])
    pos += hlen
    arrays = []
    for _ in range(n):
        (blen,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        arrays.append(np.load(io.BytesIO(data[pos: pos + blen]), allow_pickle=False))
        pos += blen

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            if "__nd__" in x:
                return arrays[x["__nd__"]]
            return {walk(k): walk(v) for k, v in x["__d__"]}
        if isinstance(x, list):
            if not any(isinstance(v, (dict, list)) for v in x):
                return x
            return [walk(v) for v in x]
        return x

    return walk(head)
