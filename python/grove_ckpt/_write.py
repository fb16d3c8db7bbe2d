"""Writing a grove checkpoint: the same bytes gv_checkpointer_save writes
(src/checkpoint/safetensors.c) for the same tree, written atomically
(src/checkpoint/atomic_write.c): a temporary file in the same directory,
fsynced, renamed into place without replacing an existing file unless asked
to, and the directory fsynced."""

import ctypes
import ctypes.util
import errno
import json
import os
import secrets
import zlib

from . import _tree

_CHUNK = 1 << 30
TMP_MARKER = ".tmp-"  # "<path>.tmp-<pid>-<hex>", as C names its temporaries


def _meta_json(structure, crc):
    meta = {"format": "grove", "version": "1", "byte_order": "little",
            "checksum_algorithm": "crc32", "checksum": f"{crc:08x}", "structure": structure}
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":"))


def encode(tree):
    """The file's bytes, as chunks: header, then each tensor's data."""
    structure, leaves = _tree.flatten(tree)
    crc, offset, parts, chunks = 0, 0, [], []
    for name, dtype, a in leaves:
        data = memoryview(a.reshape(-1).view("u1")) if a.size else b""
        crc = zlib.crc32(data, crc)
        parts.append("%s:{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%d,%d]}" % (
            json.dumps(name, ensure_ascii=False), dtype, ",".join(str(d) for d in a.shape),
            offset, offset + len(data)))
        offset += len(data)
        chunks.append(data)
    # json-c's plain output of the same object: no spaces, / not escaped
    text = ("{\"__metadata__\":" + _meta_json(structure, crc)
            + "".join("," + p for p in parts) + "}").encode()
    text += b" " * (-len(text) % 8)  # the data starts at a multiple of 8
    return [len(text).to_bytes(8, "little") + text] + chunks


# ---- the atomic write ---------------------------------------------------------

def _libc_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_renameat2 = _libc_renameat2()
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def rename_noreplace(src, dst):
    """Rename src to dst, failing with FileExistsError if dst exists, never
    replacing it (renameat2 RENAME_NOREPLACE where the system has it)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                      _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), os.fsdecode(dst))
    if os.path.isdir(src):
        # no atomic way left: check, then rename (a directory is renamed
        # onto an empty one otherwise)
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(dst))
        os.rename(src, dst)
    else:
        os.link(src, dst)  # fails with EEXIST, as C's fallback
        os.unlink(src)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        # some filesystems cannot fsync a directory; their rename is then as
        # durable as it gets
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _write_all(fd, data):
    view = memoryview(data)
    while len(view):
        n = os.write(fd, view[:_CHUNK])
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write(path, chunks, force):
    """Write the concatenation of chunks to path atomically; FileExistsError
    if path exists and not force. On failure path is untouched and no
    temporary is left."""
    label = os.fsdecode(path)
    if not force and os.path.lexists(path):  # fail fast; the rename re-checks
        raise FileExistsError(errno.EEXIST, f"'{label}' already exists (pass force=True to "
                                            "overwrite)")
    fd, tmp = -1, None
    for _ in range(16):
        tmp = f"{label}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o644)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise OSError(e.errno, f"saving '{label}': cannot create temporary file '{tmp}': "
                                   f"{e.strerror}") from None
    try:
        try:
            for c in chunks:
                _write_all(fd, c)
            os.fsync(fd)
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            try:
                rename_noreplace(tmp, path)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, f"'{label}' already exists (pass force=True "
                                                    "to overwrite)") from None
        tmp = None
    except BaseException as e:  # KeyboardInterrupt too: never leave a temporary
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno and not isinstance(e, FileExistsError):
            raise OSError(e.errno, f"saving '{label}': {e.strerror or e}") from e
        raise
    fsync_dir(os.path.dirname(label) or ".")


def save(path, tree, force=False):
    """Write tree to path as a grove checkpoint; see grove_ckpt.save."""
    label = os.fsdecode(path)
    try:
        chunks = encode(tree)
    except ValueError as e:
        raise ValueError(f"'{label}': {e}") from None
    atomic_write(path, chunks, force)
