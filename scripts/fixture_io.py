"""Writes parity fixtures as safetensors (F32 tensors + string metadata), atomically, without
the safetensors package, and the helpers every generator uses to make its inputs. Shared by the
scripts/gen_*_fixtures.py generators (one generator per process: the tensor list is module state)."""
import json
import os
import struct

import numpy as np
import torch

D = torch.float64  # references are computed in float64 from float32-representable inputs

tensors = []  # (name, float32 numpy array), in write order
_names = set()


def put(name, t):
    """Appends a tensor (torch or array-like) to the fixture, as float32."""
    if name in _names:
        raise SystemExit("duplicate tensor " + name)
    _names.add(name)
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 0:
        a = a.reshape(1)
    tensors.append((name, a))


def f32(t):
    """Rounds a float64 tensor to float32 values (kept as float64)."""
    return t.to(torch.float32).to(D)


def randn(*shape, scale=1.0):
    return f32(torch.randn(*shape, dtype=D) * scale)


def uniform(lo, hi, *shape):
    return f32(lo + (hi - lo) * torch.rand(*shape, dtype=D))


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); returns the file size in bytes."""
    header, off, blobs = {}, 0, []
    for name, a in tensors:
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


def case(name, inputs, fn, diff, after=None):
    """Runs fn(*inputs) in float64 with a random upstream gradient and stores NAME.inK, NAME.gy,
    NAME.y and NAME.ginK (the layout tests/testutil.c's tu_parity_case reads).

    diff[k] says whether input k is differentiable. after() may return {k: tensor} of input
    states after the forward (batchnorm moving statistics), stored as NAME.afterK."""
    leaves = [x.clone().requires_grad_(bool(d)) for x, d in zip(inputs, diff)]
    y = fn(*leaves)
    if y.dim() == 0:
        y = y.reshape(1)
    gy = randn(*y.shape)
    want = [l for l, d in zip(leaves, diff) if d]
    grads = torch.autograd.grad(y, want, gy) if want else []
    for k, x in enumerate(inputs):
        put("%s.in%d" % (name, k), x)
    put(name + ".gy", gy)
    put(name + ".y", y)
    gi = iter(grads)
    for k, d in enumerate(diff):
        if d:
            g = next(gi)
            assert torch.isfinite(g).all(), name
            put("%s.gin%d" % (name, k), g)
    if after:
        for k, t in after().items():
            put("%s.after%d" % (name, k), t)
