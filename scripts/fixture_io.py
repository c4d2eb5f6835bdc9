"""Writes parity fixtures as safetensors (F32 tensors + string metadata), atomically, without
the safetensors package. Shared by the scripts/gen_*_fixtures.py generators."""
import json
import os
import struct


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
