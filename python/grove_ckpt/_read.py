"""Reading a safetensors file strictly, as grove's C reader does
(src/checkpoint/safetensors_read.c): the same checks in the same order, so
that a file C refuses is refused here with the same message (less C's
function names), and a file C reads gives the same tree.

The order: the header length and its bounds, the header JSON (_json.py),
every entry (fields, dtype, shape, data_offsets), the entries tiling the
data region exactly, the grove metadata, the data (bool bytes, CRC-32), the
structure against the entries. Nothing is read before its offset and length
are known to lie within the file."""

import errno
import os
import stat
import zlib

import numpy as np

from . import _json
from ._format import (DTYPES, HEADER_JSON_DEPTH, INT64_MAX, MAX_HEADER, METADATA, ROOT_NAME,
                      STRUCTURE_JSON_DEPTH, UNSUPPORTED, CheckpointError, crepr, cstr,
                      first_unprintable)

_CHUNK = 1 << 30  # bytes per read call, as C's reader
_ROOT = ROOT_NAME.encode()


class _Source:
    """A file read by offset, never past its size (from fstat)."""

    def __init__(self, fd, size, label):
        self.fd, self.size, self.label = fd, size, label

    def _check(self, off, n):
        if off > self.size or n > self.size - off:
            raise CheckpointError(f"'{self.label}': truncated: {n} bytes needed at byte {off} "
                                  f"of a {self.size}-byte file", self.label)

    def read(self, off, n):
        self._check(off, n)
        buf = bytearray(n)
        self.read_into(off, memoryview(buf))
        return bytes(buf)

    def read_into(self, off, view):
        self._check(off, len(view))
        while len(view):
            chunk = view[:_CHUNK]
            try:
                if hasattr(os, "preadv"):
                    r = os.preadv(self.fd, [chunk], off)
                else:  # no preadv (older macOS): a copy
                    data = os.pread(self.fd, len(chunk), off)
                    chunk[:len(data)] = data
                    r = len(data)
            except OSError as e:
                raise OSError(e.errno, f"'{self.label}': read error at byte {off}: "
                                       f"{e.strerror}") from None
            if r == 0:
                raise CheckpointError(f"'{self.label}': truncated at byte {off} (file shrank?)",
                                      self.label)
            view = view[r:]
            off += r


class _Entry:
    __slots__ = ("name", "dtype_name", "shape", "begin", "end", "array", "used")

    def __init__(self, name):
        self.name = name
        self.array = None
        self.used = False


def _uint(v):
    """A JSON integer >= 0 (json-c saturates huge ones; the bounds refuse them)."""
    return v if type(v) is int and v >= 0 else None


def _parse_entry(label, e, v, data_len):
    def bad(what):
        return CheckpointError(f"'{label}': entry '{cstr(e.name)}': {what}", label)

    if not isinstance(v, dict):
        raise CheckpointError(f"'{label}': entry '{cstr(e.name)}' is not an object", label)
    fields = {}
    for k, val in v.items():
        if k not in (b"dtype", b"shape", b"data_offsets"):
            raise bad(f"unknown field '{cstr(k)}'")
        fields[k] = val
    for k in (b"dtype", b"shape", b"data_offsets"):
        if k not in fields:
            raise bad(f"missing {k.decode()}")
    dn, shape, offsets = fields[b"dtype"], fields[b"shape"], fields[b"data_offsets"]
    if not isinstance(dn, bytes):
        raise bad("dtype is not a string")
    name = dn.decode("utf-8", "replace")
    if name not in DTYPES:
        if name in UNSUPPORTED:
            raise bad(f"dtype {name} is not supported by grove yet")
        raise bad(f"unknown dtype '{cstr(dn, 40)}'")
    e.dtype_name = name
    if not isinstance(shape, list):
        raise bad("shape is not an array")
    dims, count, zero, overflow = [], 1, False, False
    for d, dim in enumerate(shape):
        dim = _uint(dim)
        if dim is None:
            raise bad(f"shape[{d}] is not an integer >= 0")
        dims.append(dim)
        if dim == 0:
            zero = True
        elif not overflow:
            count *= dim
            overflow = count > INT64_MAX
    if zero:
        count = 0
    elif overflow:
        raise bad("element count overflows")
    e.shape = tuple(dims)
    if not isinstance(offsets, list) or len(offsets) != 2 or _uint(offsets[0]) is None \
            or _uint(offsets[1]) is None:
        raise bad("data_offsets is not [begin, end]")
    e.begin, e.end = offsets
    if e.begin > e.end or e.end > data_len:
        raise bad(f"data_offsets [{e.begin}, {e.end}] outside the {data_len}-byte data region")
    if count * DTYPES[name].itemsize != e.end - e.begin:
        raise bad(f"shape and dtype {name} need {count} elements but data_offsets span "
                  f"{e.end - e.begin} bytes")


def _parse_header(src):
    label, size = src.label, src.size
    if size < 8:
        raise CheckpointError(f"'{label}': not a safetensors file: {size} bytes, shorter than "
                              "the 8-byte header length", label)
    n = int.from_bytes(src.read(0, 8), "little")
    if n > MAX_HEADER:
        raise CheckpointError(f"'{label}': header length {n} at byte 0 is over the 100 MB limit",
                              label)
    if n > size - 8:
        raise CheckpointError(f"'{label}': header length {n} at byte 0 is more than the "
                              f"{size - 8} bytes after it (truncated?)", label)
    if n < 2:
        raise CheckpointError(f"'{label}': header length {n} is too short", label)
    data_start, data_len = 8 + n, size - 8 - n
    text = src.read(8, n)
    nul = text.find(b"\0")
    if nul >= 0:
        raise CheckpointError(f"'{label}': NUL byte in the header at byte {8 + nul}", label)
    if text[0] != 0x7B:
        raise CheckpointError(f"'{label}': header does not start with '{{' (byte 8)", label)
    try:
        header = _json.loads(text, HEADER_JSON_DEPTH, label, "header", 8)
    except _json.JSONError as exc:
        raise CheckpointError(str(exc), label) from None
    entries, meta = [], None
    for key, val in header.items():
        if key == METADATA.encode():
            if not isinstance(val, dict):
                raise CheckpointError(f"'{label}': __metadata__ is not an object", label)
            for mk, mv in val.items():
                if not isinstance(mv, bytes):
                    raise CheckpointError(f"'{label}': __metadata__['{cstr(mk)}'] is not a "
                                          "string", label)
            meta = val
            continue
        e = _Entry(key)
        _parse_entry(label, e, val, data_len)
        entries.append(e)
    # safetensors' rule: the entries tile the data region exactly
    by_offset = sorted(entries, key=lambda e: (e.begin, e.end))
    pos = 0
    for e in by_offset:
        if e.begin != pos:
            how = "overlap the previous entry" if e.begin < pos else "leave a gap"
            raise CheckpointError(f"'{label}': entry '{cstr(e.name)}': data_offsets "
                                  f"[{e.begin}, {e.end}] {how} at data byte {pos}", label)
        pos = e.end
    if pos != data_len:
        raise CheckpointError(f"'{label}': entries cover {pos} bytes but the data region has "
                              f"{data_len} (trailing or missing bytes at file byte "
                              f"{data_start + pos})", label)
    return entries, by_offset, meta or {}, data_start


def _new_array(label, e):
    """An array for the entry, where C's gv_tensor_zeros and numpy can make one."""
    size = 1
    for d, dim in enumerate(e.shape):  # gv_shape_check: int64 products, in order
        size *= dim
        if size > INT64_MAX:
            raise CheckpointError(f"'{label}': entry '{cstr(e.name)}': element count overflows "
                                  f"at dimension {d}", label)
    nbytes = e.end - e.begin
    try:
        buf = np.empty(nbytes, np.uint8)
        return buf, buf.view(DTYPES[e.dtype_name]).reshape(e.shape)
    except ValueError as exc:  # numpy's own bounds, which C does not have (README)
        raise CheckpointError(f"'{label}': entry '{cstr(e.name)}': numpy cannot hold an array of "
                              f"shape {list(e.shape)}: {exc}", label) from None


def _read_data(src, by_offset, data_start):
    crc = 0
    for e in by_offset:
        buf, e.array = _new_array(src.label, e)
        if not len(buf):
            continue
        src.read_into(data_start + e.begin, memoryview(buf))
        crc = zlib.crc32(buf, crc)
        if e.dtype_name == "BOOL":
            bad = np.flatnonzero(buf > 1)
            if len(bad):
                k = int(bad[0])
                raise CheckpointError(f"'{src.label}': entry '{cstr(e.name)}': bool byte "
                                      f"{buf[k]} at file byte {data_start + e.begin + k}",
                                      src.label)
        if not e.array.dtype.isnative:  # a big-endian host
            e.array = e.array.astype(e.array.dtype.newbyteorder("="))
    return crc


def _join(path, key):
    return path + b"/" + key if path else key


def _insert_problem(key, container):
    """Why C's gv_tree_insert refuses key in container (a dict), or None."""
    bad = first_unprintable(key)
    if bad is not None:
        return (f"invalid path {crepr(key)}: key 1 has the non-printable byte "
                f"0x{key[bad]:02x}")
    if key.decode() in container:
        return f"{key.decode()} already exists (a {_node_name(container[key.decode()])})"
    return None


def _node_name(node):
    if isinstance(node, dict):
        return "dict"
    if isinstance(node, list):
        return "list"
    if isinstance(node, tuple):
        return "tuple"
    return "tensor"


def _build_structure(label, structure, by_name):
    """The tree the structure describes, its leaves the entries' arrays
    (gv build_node, without recursion: a file may nest 1500 levels)."""
    def fail(msg):
        raise CheckpointError(f"'{label}': structure: {msg}", label)

    def open_node(node, path):
        """A leaf's array, or a frame for a container."""
        where = cstr(path) if path else "<root>"
        if isinstance(node, bytes):
            want = path or _ROOT
            if node != want:
                fail(f"leaf at {where} names tensor '{cstr(node, 200)}', expected "
                     f"'{cstr(want)}'")
            e = by_name.get(node)
            if e is None or e.used:
                fail(f"leaf at {where}: tensor '{cstr(node)}' is "
                     f"{'used twice' if e else 'not in the header'}")
            e.used = True
            return e.array, None
        items, kind = None, None
        if isinstance(node, dict) and len(node) == 1:
            (kind, items), = node.items()
            if kind not in (b"dict", b"list", b"tuple"):
                items = None
        if not isinstance(items, list):
            fail(f"bad node at {where}")
        # [kind, items, next index, path, children (dict or list), key being built]
        return None, [kind, items, 0, path, {} if kind == b"dict" else [], None]

    value, frame = open_node(structure, b"")
    if frame is None:
        return value
    stack = [frame]
    while True:
        kind, items, i, path, children, _ = frame = stack[-1]
        where = cstr(path) if path else "<root>"
        if i == len(items):
            stack.pop()
            done = tuple(children) if kind == b"tuple" else children
            if not stack:
                return done
            _attach(stack[-1], done, fail)
            continue
        frame[2] = i + 1
        item = items[i]
        if kind == b"dict":
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)):
                fail(f"bad dict item {i} at {where}")
            key, child = item
            if not key or b"/" in key:
                fail(f"bad key '{cstr(key, 200)}' at {where}")
        else:
            key, child = str(i).encode(), item
        frame[5] = key
        value, sub = open_node(child, _join(path, key))
        if sub is None:
            _attach(frame, value, fail)
        else:
            stack.append(sub)


def _attach(frame, value, fail):
    kind, _, _, path, children, key = frame
    if kind != b"dict":
        children.append(value)
        return
    problem = _insert_problem(key, children)
    if problem:
        fail(f"cannot add key '{cstr(key, 200)}' at {cstr(path) if path else '<root>'}: "
             f"{problem}")
    children[key.decode()] = value


def _build_plain(label, entries):
    """A file without grove metadata: names split at '/' as nested dicts, in
    header order (gv_tree_insert_tensor's rules and messages)."""
    root = {}
    for e in entries:
        name = e.name
        problem = None
        if not name:
            problem = "the path is empty"
        else:
            for k, comp in enumerate(name.split(b"/"), 1):
                if not comp:
                    problem = (f"invalid path {crepr(name)}: key {k} is empty (keys are "
                               "separated by '/')")
                    break
                bad = first_unprintable(comp)
                if bad is not None:
                    problem = (f"invalid path {crepr(name)}: key {k} has the non-printable "
                               f"byte 0x{comp[bad]:02x}")
                    break
        if problem is None:
            cur, parts = root, name.decode().split("/")
            for k, part in enumerate(parts[:-1]):
                nxt = cur.get(part)
                if nxt is None:
                    nxt = cur[part] = {}
                elif not isinstance(nxt, dict):
                    problem = f"cannot create {name.decode()}: {'/'.join(parts[:k + 1])} is a " \
                              "tensor leaf"
                    break
                cur = nxt
            else:
                if parts[-1] in cur:
                    problem = f"{name.decode()} already exists (a {_node_name(cur[parts[-1]])})"
                else:
                    cur[parts[-1]] = e.array
        if problem:
            raise CheckpointError(f"'{label}': entry '{cstr(name, 200)}' is not a valid tree "
                                  f"path: {problem}", label)
    return root


def read_tree(path):
    """(tree, has_grove_metadata) of the file at path."""
    label = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise OSError(e.errno, f"cannot open '{label}': {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"'{label}' is not a regular file (it is a "
                                                  "directory)")
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"'{label}' is not a regular file", label)
        return _read(_Source(fd, st.st_size, label))
    finally:
        os.close(fd)


def _read(src):
    label = src.label
    entries, by_offset, meta, data_start = _parse_header(src)
    grove = meta.get(b"format") == b"grove"
    if grove:
        ver = meta.get(b"version")
        if ver != b"1":
            raise CheckpointError(f"'{label}': grove format version "
                                  f"'{cstr(ver) if ver is not None else '(none)'}' (this grove "
                                  "reads 1)", label)
        if meta.get(b"byte_order") != b"little" or meta.get(b"checksum_algorithm") != b"crc32" \
                or b"checksum" not in meta:
            raise CheckpointError(f"'{label}': grove metadata needs byte_order 'little', "
                                  "checksum_algorithm 'crc32' and a checksum", label)
    crc = _read_data(src, by_offset, data_start)
    if grove:
        got, said = f"{crc:08x}", meta[b"checksum"]
        if got.encode() != said:
            raise CheckpointError(f"'{label}': checksum mismatch: the data region (bytes "
                                  f"{data_start}..{src.size}) has crc32 {got}, the header says "
                                  f"{cstr(said, 16)} (corrupted file)", label)
        text = meta.get(b"structure")
        if text is None:
            raise CheckpointError(f"'{label}': grove metadata without structure", label)
        try:
            structure = _json.loads(text, STRUCTURE_JSON_DEPTH, label, "__metadata__ structure",
                                    0)
        except _json.JSONError as exc:
            raise CheckpointError(str(exc), label) from None
        tree = _build_structure(label, structure, {e.name: e for e in entries})
        for e in entries:
            if not e.used:
                raise CheckpointError(f"'{label}': entry '{cstr(e.name)}' is not in the "
                                      "structure", label)
        return tree, True
    return _build_plain(label, entries), False
