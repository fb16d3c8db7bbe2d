#!/usr/bin/python3
"""Read a grove checkpoint with plain numpy (no safetensors package) and
check every value against what tests/checkpoint/test_checkpointer.c wrote
(its sample_tree()). Exit status 0 iff everything matches.

    python3 read_checkpoint.py FILE

Also loads FILE with the real `safetensors` package when it is installed."""
import json
import struct
import sys
import zlib

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
          "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}


def load(path):
    """The numpy way to read any safetensors file: {name: array}, metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    arrays = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        arrays[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"])
    return arrays, meta, data, header, n


def arange(dtype, shape, start):
    n = int(np.prod(shape)) if shape else 1
    if dtype == np.bool_:
        return (np.arange(n) % 2).astype(np.bool_).reshape(shape)
    # the C test writes start + i as a double, converted to dtype
    return np.array([start + i for i in range(n)], dtype=np.float64).astype(dtype).reshape(shape)


EXPECTED = {
    "params/dense/kernel": arange(np.float32, (3, 4), 0),
    "params/dense/bias": arange(np.float64, (4,), -2),
    "step": arange(np.int64, (), 7),
    "ints/i32": arange(np.int32, (2, 3), -3),
    "ints/u8": np.array([250, 251, 252, 253, 254], np.uint8),
    "ints/u16": np.array([65534, 65535], np.uint16),
    "ints/u32": np.array([4294967294, 4294967295], np.uint32),
    "ints/u64": np.array([10**15, 10**15 + 1], np.uint64),
    "ints/i64": np.array([-5 * 10**14, -5 * 10**14 + 1], np.int64),
    "mask": np.array([False, True, False, True]),
    "empty": np.zeros((0, 3), np.float32),
    "opt_state/0/0": arange(np.float32, (2,), 10),
    "opt_state/1": arange(np.int32, (), 3),
}

STRUCTURE = {"dict": [
    ["params", {"dict": [["dense", {"dict": [["kernel", "params/dense/kernel"],
                                             ["bias", "params/dense/bias"]]}]]}],
    ["step", "step"],
    ["ints", {"dict": [["i32", "ints/i32"], ["u8", "ints/u8"], ["u16", "ints/u16"],
                       ["u32", "ints/u32"], ["u64", "ints/u64"], ["i64", "ints/i64"]]}],
    ["mask", "mask"],
    ["empty", "empty"],
    ["nothing", {"dict": []}],
    ["opt_state", {"tuple": [{"list": ["opt_state/0/0", {"tuple": []}]}, "opt_state/1"]}],
]}


def main():
    path = sys.argv[1]
    arrays, meta, data, header, n = load(path)
    errors = []
    if (8 + n) % 8:
        errors.append(f"header length {n} not padded to 8")
    for k, v in [("format", "grove"), ("version", "1"), ("byte_order", "little"),
                 ("checksum_algorithm", "crc32")]:
        if meta.get(k) != v:
            errors.append(f"metadata {k} = {meta.get(k)!r}, expected {v!r}")
    crc = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
    if meta.get("checksum") != crc:
        errors.append(f"checksum {meta.get('checksum')} vs computed {crc}")
    if json.loads(meta["structure"]) != STRUCTURE:
        errors.append(f"structure {meta['structure']}")
    # entries in flatten order (sorted paths here), contiguous from 0
    names = list(header)
    pos = 0
    for name in names:
        b, e = header[name]["data_offsets"]
        if b != pos:
            errors.append(f"{name}: begins at {b}, expected {pos}")
        pos = e
    if pos != len(data):
        errors.append(f"data region {len(data)} bytes, entries cover {pos}")
    if set(arrays) != set(EXPECTED):
        errors.append(f"names {sorted(arrays)} vs {sorted(EXPECTED)}")
    for name, want in EXPECTED.items():
        got = arrays.get(name)
        if got is None:
            continue
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
            errors.append(f"{name}: got {got!r} expected {want!r}")
    try:
        from safetensors.numpy import load_file  # only if the package is installed
    except ImportError:
        load_file = None
    if load_file is not None:
        for name, arr in load_file(path).items():
            if not np.array_equal(arr, EXPECTED[name]):
                errors.append(f"safetensors package: {name} differs")
    for e in errors:
        print("read_checkpoint.py:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
