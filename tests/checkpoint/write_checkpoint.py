#!/usr/bin/python3
"""Write a safetensors file with numpy exactly as the safetensors package
lays one out (no grove metadata): 8-byte little-endian header length, a
compact JSON header padded with spaces to a multiple of 8, "__metadata__"
first, tensors sorted by dtype size (largest first) then name, data packed
contiguously. test_checkpointer.c restores it and checks the values.

    python3 write_checkpoint.py FILE"""
import json
import struct
import sys

import numpy as np

NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int32): "I32",
         np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}

TENSORS = {
    "encoder/layer_0/weight": (np.arange(6, dtype=np.float32) * 0.5).reshape(2, 3),
    "encoder/layer_0/bias": np.array([-3.0, -2.0, -1.0], np.float64),
    "head/w": np.arange(4, dtype=np.int64).reshape(2, 2) * 10**12,
    "count": np.array(42, np.int32),
    "mask": np.array([True, False, True, True]),
    "u8": np.array([0, 128, 255], np.uint8),
    "empty": np.zeros((3, 0), np.float32),
}


def save(path, tensors, metadata):
    order = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in order:
        a = np.array(tensors[name], order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    path = sys.argv[1]
    try:  # the real package, when installed, writes the file itself
        from safetensors.numpy import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(TENSORS, path, metadata={"format": "np"})
    else:
        save(path, TENSORS, {"format": "np"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
