"""What the reader and the writer share: the error type, the dtypes grove
holds, and the bounds and names of the format (src/checkpoint/
format_internal.h, safetensors.c)."""

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file or directory is malformed, corrupted or does not
    match the target. The message names the file and what was wrong (the
    byte offset or the entry), as grove's C reader says it::

        'ckpt/3/state.safetensors': checksum mismatch: the data region
        (bytes 512..2048) has crc32 1c291ca3, the header says 1c291ca4
        (corrupted file)

    ``path`` is the file (or directory) concerned, when there is one.
    """

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


# safetensors dtype names grove holds, and their numpy dtypes (little-endian)
DTYPES = {
    "BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"), "U64": np.dtype("<u8"), "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
# valid safetensors dtypes grove cannot hold yet (C: GV_ERR_UNSUPPORTED)
UNSUPPORTED = frozenset({"F16", "BF16", "I8", "I16", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                         "F6_E2M3", "F6_E3M2", "F4", "C64"})
SUPPORTED_NAMES = "bool, uint8, uint16, uint32, uint64, int32, int64, float32, float64"

MAX_HEADER = 100_000_000        # safetensors' own limit
HEADER_JSON_DEPTH = 64          # json-c's nesting bound for the header ...
STRUCTURE_JSON_DEPTH = 3072     # ... and for the structure (about 1000 tree levels)
ROOT_NAME = "__root__"          # the tensor of a tree that is a single leaf
METADATA = "__metadata__"
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def st_name(dtype):
    """The safetensors name of a numpy dtype grove holds, or None."""
    dtype = np.dtype(dtype)
    code = {"b": "BOOL", "u": "U", "i": "I", "f": "F"}.get(dtype.kind)
    if code is None or dtype.fields is not None or dtype.subdtype is not None:
        return None
    if code == "BOOL":
        return code if dtype.itemsize == 1 else None
    name = f"{code}{8 * dtype.itemsize}"
    return name if name in DTYPES else None


def dtype_label(dtype):
    """numpy's name for a dtype, as grove prints it ("float32", "bool")."""
    name = st_name(dtype)
    return DTYPES[name].name if name else np.dtype(dtype).name


def shape_str(shape):
    """A shape as Python prints the tuple: (), (3,), (2, 3)."""
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def printable_char(b, i):
    """Length of the valid, printable UTF-8 character at b[i], or 0, as
    grove's tree keys are checked (gv_tree_printable_char: no C0/C1 control
    character, no DEL, no surrogate, no overlong form)."""
    c = b[i]
    if c < 0x80:
        return 1 if c >= 0x20 and c != 0x7F else 0
    if c & 0xE0 == 0xC0:
        n, cp, low = 2, c & 0x1F, 0x80
    elif c & 0xF0 == 0xE0:
        n, cp, low = 3, c & 0x0F, 0x800
    elif c & 0xF8 == 0xF0:
        n, cp, low = 4, c & 0x07, 0x10000
    else:
        return 0
    if i + n > len(b):
        return 0
    for k in range(1, n):
        if b[i + k] & 0xC0 != 0x80:
            return 0
        cp = cp << 6 | (b[i + k] & 0x3F)
    if cp < low or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF or cp <= 0x9F:
        return 0
    return n


def first_unprintable(b):
    """Offset of the first byte of b (bytes) that does not start a
    printable character, or None."""
    if b.isascii():
        for i, c in enumerate(b):
            if c < 0x20 or c == 0x7F:
                return i
        return None
    i = 0
    while i < len(b):
        k = printable_char(b, i)
        if not k:
            return i
        i += k
    return None


def key_problem(key):
    """Why a str is not a valid tree key (None if it is one): non-empty,
    printable characters, no '/'."""
    if not isinstance(key, str):
        return f"key {key!r} is not a string"
    if not key:
        return "key '' is empty"
    if "/" in key:
        return f"key {key!r} contains '/'"
    for ch in key:
        cp = ord(ch)
        if cp < 0x20 or 0x7F <= cp <= 0x9F or 0xD800 <= cp <= 0xDFFF:
            return f"key {key!r} has the non-printable character U+{cp:04X}"
    return None


def crepr(b):
    """A byte string as grove's C code quotes it (gv_tree_sb_repr): Python's
    repr rules for the quotes, printable UTF-8 as is, \\xHH for other bytes."""
    sq, dq = b"'" in b, b'"' in b
    q = 0x22 if sq and not dq else 0x27
    out = [chr(q)]
    i = 0
    while i < len(b):
        c = b[i]
        k = printable_char(b, i)
        if c == 0x5C or c == q:
            out.append("\\" + chr(c))
        elif k:
            out.append(b[i:i + k].decode())
            i += k
            continue
        elif c in (0x0A, 0x09, 0x0D):
            out.append({0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}[c])
        else:
            out.append(f"\\x{c:02x}")
        i += 1
    out.append(chr(q))
    return "".join(out)


def cstr(b, limit=None):
    """Bytes from a file, for a message (C prints them with %s / %.200s)."""
    if limit is not None:
        b = b[:limit]
    return b.decode("utf-8", "backslashreplace")
