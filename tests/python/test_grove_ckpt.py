#!/usr/bin/python3
"""Tests of grove_ckpt (python/grove_ckpt), grove's checkpoints from Python.

Run by CTest (tests/python/CMakeLists.txt) with PYTHONPATH at python/ and
GROVE_CKPT_TOOL naming ckpt_tool, the C side (tests/python/ckpt_tool.c):
files and step directories written by grove's C API are read here, ours are
read by C, and every malformed file must be refused by both with the same
message. Without numpy the suite exits 77 (CTest: skipped); without
GROVE_CKPT_TOOL the tests that need C are skipped.

    /usr/bin/python3 tests/python/test_grove_ckpt.py -v
"""
import collections
import errno
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib
from collections.abc import Mapping
from unittest import mock

try:
    import numpy as np
except ImportError:  # as tests/checkpoint/test_checkpointer.c: skip without numpy
    print("test_grove_ckpt.py: numpy is not installed (python3-numpy): skipped")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))  # when run by hand
sys.path.insert(0, os.path.join(HERE, "..", "checkpoint"))    # write_checkpoint.py
import grove_ckpt  # noqa: E402
from grove_ckpt import CheckpointError  # noqa: E402

TOOL = os.environ.get("GROVE_CKPT_TOOL")


# ---- helpers ---------------------------------------------------------------

def arange(dtype, shape, start):
    """ckpt_tool.c's ar(): start + i converted to dtype (bool: alternating)."""
    n = int(np.prod(shape)) if shape else 1
    if dtype == np.bool_:
        return (np.arange(n) % 2).astype(np.bool_).reshape(shape)
    return np.array([start + i for i in range(n)], np.float64).astype(dtype).reshape(shape)


def sample():
    """ckpt_tool.c's sample_tree(), in insertion order."""
    return {
        "params": {"dense": {"kernel": arange(np.float32, (3, 4), 0),
                             "bias": arange(np.float64, (4,), -2)}},
        "step": arange(np.int64, (), 7),
        "ints": {"u8": arange(np.uint8, (5,), 250), "u16": arange(np.uint16, (2,), 65534),
                 "u32": arange(np.uint32, (2,), 4294967294), "u64": arange(np.uint64, (2,), 1e15),
                 "i32": arange(np.int32, (2, 3), -3), "i64": arange(np.int64, (2,), -5e14)},
        "mask": arange(np.bool_, (4,), 0),
        "empty": arange(np.float32, (0, 3), 0),
        "caf\u00e9": arange(np.float32, (), 1.5),
        "nothing": {},
        "opt_state": ([arange(np.float32, (2,), 10), (), []], arange(np.int32, (), 3)),
    }


def assert_same_tree(tc, a, b, path="<root>"):
    """Same container types, key order, dtypes, shapes and values."""
    tc.assertIs(type(a), type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}")
    if isinstance(a, dict):
        tc.assertEqual(list(a), list(b), f"{path}: keys or their order differ")
        for k in a:
            assert_same_tree(tc, a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        tc.assertEqual(len(a), len(b), f"{path}: lengths differ")
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(tc, x, y, f"{path}/{i}")
    else:
        tc.assertEqual((a.dtype, a.shape), (b.dtype, b.shape), path)
        tc.assertTrue(np.array_equal(a, b), f"{path}: {a!r} vs {b!r}")


def craft(header, data=b""):
    """A safetensors file: header text (str or bytes) padded with spaces."""
    if isinstance(header, str):
        header = header.encode("utf-8", "surrogatepass")
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def c_node(tree):
    """A tree as ckpt_tool prints it."""
    if isinstance(tree, dict):
        return {"dict": [[k.encode().hex(), c_node(v)] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return {type(tree).__name__: [c_node(v) for v in tree]}
    name = {"b": "BOOL", "u": "U", "i": "I", "f": "F"}[tree.dtype.kind]
    if name != "BOOL":
        name += str(8 * tree.dtype.itemsize)
    return {"dtype": name, "shape": list(tree.shape), "hex": tree.tobytes().hex()}


def sorted_dicts(node):
    """A ckpt_tool node with every dict's items sorted."""
    if isinstance(node, dict):
        return {k: sorted(sorted_dicts(v)) if k == "dict" else sorted_dicts(v)
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [sorted_dicts(v) for v in node]
    return node


C_PREFIXES = ("gv_checkpointer_restore_into: ", "gv_checkpointer_restore: ",
              "gv_tree_insert_tensor: ", "gv_tree_insert: ", "gv_tensor_zeros: ")


def c_message(text):
    """A C error message less C's function names, as grove_ckpt words it."""
    for p in C_PREFIXES:
        text = text.replace(p, "")
    return text


def run_tool(tc, *args):
    if not TOOL:
        tc.skipTest("GROVE_CKPT_TOOL is not set (run through CTest)")
    r = subprocess.run([TOOL, *args], capture_output=True)
    err = r.stderr.decode(errors="replace")
    tc.assertNotRegex(err, "Sanitizer|runtime error", "ckpt_tool: " + err)
    tc.assertEqual(r.returncode, 0, f"ckpt_tool {' '.join(args)}: {err}")
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def c_results(tc, paths):
    """What C's gv_checkpointer_restore makes of each file: ("ok", node) or
    ("error", message)."""
    out = []
    for k in range(0, len(paths), 400):
        for r in run_tool(tc, "dump", *paths[k:k + 400]):
            out.append(("ok", r["tree"]) if r["ok"] else
                       ("error", c_message(bytes.fromhex(r["error_hex"]).decode(
                           "utf-8", "backslashreplace"))))
    return out


def py_result(path):
    try:
        return ("ok", c_node(grove_ckpt.load(path)))
    except CheckpointError as e:
        return ("error", str(e))


class TmpDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grove_ckpt_")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def leftovers(self, d=None):
        return [f for f in os.listdir(d or self.dir) if ".tmp-" in f]


# ---- round trips -------------------------------------------------------------

class RoundTrip(TmpDirTest):
    def round_trip(self, tree, name="t.safetensors"):
        grove_ckpt.save(self.path(name), tree)
        return grove_ckpt.load(self.path(name))

    def test_every_dtype_rank_0_and_empty(self):
        tree = {}
        for dt in (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int32, np.int64,
                   np.float32, np.float64):
            info = np.iinfo(dt) if np.dtype(dt).kind in "iu" else None
            if info is not None:
                values = np.array([info.min, info.max, 0, 1], dt)
            elif dt == np.bool_:
                values = np.array([True, False, True])
            else:
                values = np.array([np.inf, -np.inf, np.nan, -0.0, np.finfo(dt).tiny,
                                   np.finfo(dt).max], dt)
            name = np.dtype(dt).name
            tree[name] = {"values": values, "matrix": np.arange(6).astype(dt).reshape(2, 3),
                          "scalar": np.array(values[1]), "empty": np.zeros((0, 3), dt),
                          "empty2": np.zeros((2, 0, 1), dt)}
        got = self.round_trip(tree)
        for name, leaves in tree.items():
            for k, want in leaves.items():
                a = got[name][k]
                self.assertEqual((a.dtype, a.shape), (want.dtype, want.shape), f"{name}/{k}")
                self.assertTrue(np.array_equal(a, want, equal_nan=want.dtype.kind == "f"),
                                f"{name}/{k}")
        assert_same_tree(self, self.round_trip(sample(), "s.safetensors"), sample())

    def test_containers_and_key_order(self):
        nest = {"y": [{}, (), [np.ones(2, np.float32)]], "x": (np.zeros(1, np.int32),)}
        tree = {"z": {}, "b": [], "a": (), "nest": nest,
                "m": {"q": np.array(1, np.uint8), "c": np.array(2, np.uint8)}}
        got = self.round_trip(tree)
        assert_same_tree(self, got, tree)
        self.assertEqual(list(got), ["z", "b", "a", "nest", "m"])  # insertion order, not sorted
        self.assertIsInstance(got["nest"]["x"], tuple)
        self.assertIsInstance(got["nest"]["y"], list)

    def test_roots(self):
        x = np.arange(3, dtype=np.float32)
        assert_same_tree(self, self.round_trip(x, "leaf"), x)
        with open(self.path("leaf"), "rb") as f:
            self.assertIn(b'"__root__"', f.read())
        for i, tree in enumerate(({}, [], (), [x, (x,)], (np.array(1),))):
            assert_same_tree(self, self.round_trip(tree, f"r{i}"), tree)

    def test_python_and_numpy_scalars(self):
        got = self.round_trip({"i": 3, "f": 0.5, "b": True, "n": -2**63, "f32": np.float32(2),
                               "u16": np.uint16(7), "bool": np.bool_(False)})
        want = {"i": np.array(3, np.int64), "f": np.array(0.5), "b": np.array(True),
                "n": np.array(-2**63, np.int64), "f32": np.array(2, np.float32),
                "u16": np.array(7, np.uint16), "bool": np.array(False)}
        assert_same_tree(self, got, want)
        with self.assertRaisesRegex(ValueError, "n: the int 9223372036854775808 does not fit"):
            grove_ckpt.save(self.path("big"), {"n": 2**63})

    def test_layouts_and_mappings(self):
        big_endian = np.arange(4, dtype=">f8")
        transposed = np.arange(6, dtype=np.int32).reshape(2, 3).T
        odd_bools = np.frombuffer(b"\x00\x02\x01", np.bool_)  # bytes other than 0/1
        Adam = collections.namedtuple("ScaleByAdamState", "count mu nu")

        class Frozen(Mapping):  # a Mapping that is not a dict (Flax's FrozenDict)
            def __init__(self, d):
                self._d = dict(d)

            def __getitem__(self, k):
                return self._d[k]

            def __iter__(self):
                return iter(self._d)

            def __len__(self):
                return len(self._d)

        tree = {"be": big_endian, "t": transposed, "bools": odd_bools,
                "opt": (Adam(np.array(1), {"w": np.ones(2)}, {"w": np.zeros(2)}),),
                "frozen": Frozen({"k": np.ones(1, np.uint32)}),
                "ordered": collections.OrderedDict([("b", np.ones(1)), ("a", np.ones(1))])}
        got = self.round_trip(tree)
        self.assertEqual(got["be"].dtype, np.float64)
        self.assertTrue(np.array_equal(got["be"], big_endian))
        self.assertTrue(np.array_equal(got["t"], transposed))
        self.assertEqual(got["bools"].tolist(), [False, True, True])
        self.assertEqual(list(got["opt"][0]), ["count", "mu", "nu"])  # fields, as a dict
        self.assertEqual(type(got["frozen"]), dict)
        self.assertEqual(list(got["ordered"]), ["b", "a"])

    def test_refused_dtypes_name_the_path(self):
        for dt in ("float16", "int8", "int16", "complex64", "complex128", "longdouble",
                   "datetime64[s]"):
            with self.subTest(dt):
                with self.assertRaisesRegex(ValueError, r"'.*x': params/w: dtype \S+ cannot be "
                                            "saved") as cm:
                    grove_ckpt.save(self.path("x"), {"params": {"w": np.zeros(2, dt)}})
                self.assertIn(np.dtype(dt).name, str(cm.exception))
        try:
            import ml_dtypes
        except ImportError:
            ml_dtypes = None
        if ml_dtypes is not None:
            with self.assertRaisesRegex(ValueError, "w: dtype bfloat16 cannot be saved"):
                grove_ckpt.save(self.path("x"), {"w": np.zeros(2, ml_dtypes.bfloat16)})
        for leaf, needle in ((np.array([object()]), "dtype object cannot be saved"),
                             ("text", "cannot save a leaf of type str"),
                             (None, "None is not an array"),
                             (object(), "cannot save a leaf of type object")):
            with self.assertRaisesRegex(ValueError, "a/0: " + needle):
                grove_ckpt.save(self.path("x"), {"a": [leaf]})
        self.assertEqual(self.leftovers(), [])
        self.assertFalse(os.path.exists(self.path("x")))

    def test_refused_keys(self):
        for tree, needle in (({"": 1}, r"<root>: key '' is empty"),
                             ({"a": {"b/c": 1}}, "a: key 'b/c' contains '/'"),
                             ({1: 1}, "<root>: key 1 is not a string"),
                             ({"a\tb": 1}, "non-printable character U\\+0009"),
                             ({"a\x85": 1}, "non-printable character U\\+0085"),
                             ({"__metadata__": 1}, "the key '__metadata__' is reserved")):
            with self.subTest(needle), self.assertRaisesRegex(ValueError, needle):
                grove_ckpt.save(self.path("k"), tree)
        loop = {}
        loop["self"] = loop
        with self.assertRaisesRegex(ValueError, "self: the tree contains itself"):
            grove_ckpt.save(self.path("k"), loop)
        # only a tensor may not be called __metadata__, as in C
        tree = {"__metadata__": {"x": np.ones(1)}, "u\u2028": np.ones(1)}
        assert_same_tree(self, self.round_trip(tree), tree)

    def test_header_layout(self):
        grove_ckpt.save(self.path("h"), {"b": np.ones(3, np.float32), "a": np.ones(1, np.uint8)})
        with open(self.path("h"), "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual((8 + n) % 8, 0)
        header = json.loads(raw[8:8 + n])
        meta = header.pop("__metadata__")
        self.assertEqual({k: meta[k] for k in ("format", "version", "byte_order",
                                               "checksum_algorithm")},
                         {"format": "grove", "version": "1", "byte_order": "little",
                          "checksum_algorithm": "crc32"})
        self.assertEqual(meta["checksum"], "%08x" % zlib.crc32(raw[8 + n:]))
        self.assertEqual(json.loads(meta["structure"]), {"dict": [["b", "b"], ["a", "a"]]})
        self.assertEqual(list(header), ["a", "b"])  # flatten order: sorted
        self.assertEqual(header["a"]["data_offsets"], [0, 1])
        self.assertEqual(header["b"], {"dtype": "F32", "shape": [3], "data_offsets": [1, 13]})


class AtomicSave(TmpDirTest):
    def test_exists_and_force(self):
        p = self.path("s")
        grove_ckpt.save(p, {"a": np.ones(1)})
        with self.assertRaisesRegex(FileExistsError, "already exists"):
            grove_ckpt.save(p, {"a": np.zeros(1)})
        self.assertEqual(grove_ckpt.load(p)["a"][0], 1)
        grove_ckpt.save(p, {"a": np.zeros(1)}, force=True)
        self.assertEqual(grove_ckpt.load(p)["a"][0], 0)
        self.assertEqual(self.leftovers(), [])

    def test_failure_keeps_the_old_file(self):
        p = self.path("s")
        grove_ckpt.save(p, {"a": np.ones(1000)})
        with open(p, "rb") as f:
            before = f.read()
        real_write = os.write

        def disk_full(fd, data):  # the second write fails, as a full disk would
            if len(data) > 64:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        for what, patch in (("write", mock.patch("os.write", disk_full)),
                            ("fsync", mock.patch("os.fsync",
                                                 side_effect=OSError(errno.EIO, "I/O error")))):
            with self.subTest(what):
                with patch, self.assertRaises(OSError) as cm:
                    grove_ckpt.save(p, {"a": np.zeros(1000)}, force=True)
                self.assertIn(p, str(cm.exception))
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), before)
                self.assertEqual(self.leftovers(), [])
        with self.assertRaises(FileNotFoundError):
            grove_ckpt.save(self.path("no/such/dir/x"), {"a": np.ones(1)})

    def test_interrupt_leaves_no_temporary(self):
        with mock.patch("os.fsync", side_effect=KeyboardInterrupt), \
                self.assertRaises(KeyboardInterrupt):
            grove_ckpt.save(self.path("s"), {"a": np.ones(1)})
        self.assertEqual(os.listdir(self.dir), [])


# ---- restoring into a target -------------------------------------------------

class ShapeDtypeStruct:
    """jax.ShapeDtypeStruct's two attributes, without jax."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)


def abstract(tree):
    if isinstance(tree, dict):
        return {k: abstract(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(abstract(v) for v in tree)
    return ShapeDtypeStruct(tree.shape, tree.dtype)


class Target(TmpDirTest):
    def setUp(self):
        super().setUp()
        self.file = self.path("s.safetensors")
        grove_ckpt.save(self.file, sample())

    def test_matching_targets(self):
        assert_same_tree(self, grove_ckpt.load(self.file, target=sample()), sample())
        assert_same_tree(self, grove_ckpt.load(self.file, target=abstract(sample())), sample())
        # the target's containers and key order; namedtuples match their dicts
        Dense = collections.namedtuple("Dense", "bias kernel")
        target = collections.OrderedDict(
            (k, v) for k, v in reversed(list(abstract(sample()).items())))
        target["params"] = {"dense": Dense(ShapeDtypeStruct((4,), "f8"),
                                           ShapeDtypeStruct((3, 4), "f4"))}
        got = grove_ckpt.load(self.file, target=target)
        self.assertIs(type(got), collections.OrderedDict)
        self.assertEqual(list(got), list(target))
        self.assertIsInstance(got["params"]["dense"], Dense)
        self.assertTrue(np.array_equal(got["params"]["dense"].kernel,
                                       sample()["params"]["dense"]["kernel"]))

    def mismatch(self, change, needle, file=None):
        target = abstract(sample())
        change(target)
        with self.assertRaises(CheckpointError) as cm:
            grove_ckpt.load(file or self.file, target=target)
        self.assertEqual(str(cm.exception), f"'{file or self.file}': {needle}")
        return target

    def test_mismatches_name_the_path(self):
        def shape(t):
            t["params"]["dense"]["bias"] = ShapeDtypeStruct((5,), "f8")

        def dtype(t):
            t["step"] = ShapeDtypeStruct((), "i4")

        def missing(t):
            t["zz"] = {}

        def unexpected(t):
            del t["mask"]

        def kind(t):
            t["opt_state"] = list(t["opt_state"])

        def length(t):
            t["opt_state"][0].append({})

        self.mismatch(shape, "target vs file: params/dense/bias: shape (5,) vs (4,)")
        self.mismatch(dtype, "target vs file: step: dtype int32 vs int64")
        self.mismatch(missing, "target vs file: missing key 'zz' at <root>")
        self.mismatch(unexpected, "target vs file: unexpected key 'mask' at <root>")
        self.mismatch(kind, "target vs file: list vs tuple at opt_state")
        self.mismatch(length, "target vs file: list length 4 vs 3 at opt_state/0")
        with self.assertRaisesRegex(TypeError, "target: params/dense/bias: a str is not"):
            t = abstract(sample())
            t["params"]["dense"]["bias"] = "x"
            grove_ckpt.load(self.file, target=t)

    def test_plain_files_take_the_targets_containers(self):
        import write_checkpoint  # numpy's safetensors layout, no grove metadata
        plain = self.path("plain.safetensors")
        write_checkpoint.save(plain, write_checkpoint.TENSORS, {"format": "np"})
        t = write_checkpoint.TENSORS
        target = {"encoder": {"layer_0": (t["encoder/layer_0/weight"], t["encoder/layer_0/bias"])},
                  "head": {"w": t["head/w"]}, "count": t["count"], "mask": t["mask"],
                  "u8": t["u8"], "empty": t["empty"]}
        # a tuple's paths are "layer_0/0", "layer_0/1": no such names
        with self.assertRaisesRegex(CheckpointError, "encoder/layer_0/0: in the target but "
                                    "not in the file"):
            grove_ckpt.load(plain, target=target)
        target["encoder"]["layer_0"] = {"bias": abstract(t["encoder/layer_0/bias"]),
                                        "weight": t["encoder/layer_0/weight"]}
        got = grove_ckpt.load(plain, target=target)
        self.assertEqual(list(got["encoder"]["layer_0"]), ["bias", "weight"])
        self.assertTrue(np.array_equal(got["head"]["w"], t["head/w"]))
        target["count"] = ShapeDtypeStruct((1,), "i4")
        with self.assertRaisesRegex(CheckpointError, r"count: target int32 \(1,\) vs file "
                                    r"int32 \(\)"):
            grove_ckpt.load(plain, target=target)
        del target["count"]
        with self.assertRaisesRegex(CheckpointError, "the file has 7 tensors, the target 6 "
                                    "leaves"):
            grove_ckpt.load(plain, target=target)

    def test_messages_match_c(self):
        """gv_checkpointer_restore_into says the same, for targets read from files."""
        cases = [({"a": np.ones(2, np.float32)}, {"a": np.ones(3, np.float32)}),
                 ({"a": np.ones(2, np.float32)}, {"a": np.ones(2, np.int32)}),
                 ({"a": [np.ones(1)]}, {"a": (np.ones(1),)}),
                 ({"a": {"x": np.ones(1)}}, {"a": {"y": np.ones(1)}}),
                 ({"a": [np.ones(1)]}, {"a": [np.ones(1), np.ones(1)]}),
                 ({"b": np.ones(1), "a": {}}, {"a": {}, "b": np.ones(1)}),
                 (np.ones(1), {"x": np.ones(1)})]
        for i, (file_tree, target_tree) in enumerate(cases):
            f, t = self.path(f"f{i}"), self.path(f"t{i}")
            grove_ckpt.save(f, file_tree)
            grove_ckpt.save(t, target_tree)
            (c,) = run_tool(self, "dump-into", f, t)
            try:
                py = ("ok", c_node(grove_ckpt.load(f, target=grove_ckpt.load(t))))
            except CheckpointError as e:
                py = ("error", str(e))
            want = ("ok", c["tree"]) if c["ok"] else \
                ("error", c_message(bytes.fromhex(c["error_hex"]).decode()))
            # C keeps the file's key order, grove_ckpt the target's
            self.assertEqual(sorted_dicts(py), sorted_dicts(want), f"case {i}")


# ---- malformed files -----------------------------------------------------------

F32 = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
F32x2 = '"dtype":"F32","shape":[2]'
ONE = b"\x00\x00\x80\x3f"


def grove_meta(structure, checksum):
    return ('"format":"grove","version":"1","byte_order":"little","checksum_algorithm":"crc32",'
            '"checksum":"%s","structure":%s' % (checksum, json.dumps(structure)))


CRC_12 = "%08x" % zlib.crc32(struct.pack("<2f", 1, 2))
GROVE_12 = '{"__metadata__":{%s},"a":{%s,"data_offsets":[0,8]}}'

# (name, header, data, what the message must contain); each is also read by C
MALFORMED = [
    ("header length 0", struct.pack("<Q", 0) + b"\0" * 8, None, "header length 0 is too short"),
    ("header length past the file", struct.pack("<Q", 9) + b"{}      ", None,
     "header length 9 at byte 0 is more than the 8 bytes after it (truncated?)"),
    ("header over 100 MB", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(54), None,
     "over the 100 MB limit"),
    ("header length 2^63", struct.pack("<Q", 2**63) + b"{}", None, "over the 100 MB limit"),
    ("NUL in the header", b"\x08\0\0\0\0\0\0\0{\"a\0:1} ", None,
     "NUL byte in the header at byte 11"),
    ("not JSON", "not json", b"", "does not start with '{'"),
    ("JSON array", "[1,2]", b"", "does not start with '{'"),
    ("unterminated", '{"a":', b"", "header is not valid JSON: unexpected end at byte 13"),
    ("trailing text", '{"a":{}} x', b"", "unexpected character at byte 17"),
    ("trailing comma", '{"a":' + F32 + ',}', ONE, "unexpected character"),
    ("single-quoted key", "{'a':{}}", b"", "bad key (or \\u0000 in a key) at byte 9"),
    ("single-quoted value", '{"a":{"dtype":\'F32\',"shape":[1],"data_offsets":[0,4]}}', ONE,
     "not valid JSON"),
    ("NaN", '{"__metadata__":{"x":NaN}}', b"", "malformed JSON value at byte 29"),
    ("leading zero", '{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', ONE,
     "number expected at byte 39"),
    ("invalid UTF-8", b'{"\xff\xfe":' + F32.encode() + b"}", ONE,
     "not valid JSON: invalid utf-8 string at byte 10"),
    ("nesting too deep", '{"a":{"x":' + "[" * 70 + "]" * 70 + "}}", b"", "nesting too deep"),
    ("duplicate name", '{"a":{%s,"data_offsets":[0,8]},"a":{%s,"data_offsets":[8,16]}}'
     % (F32x2, F32x2), bytes(16), "duplicate name 'a' in the header"),
    ("duplicate spelled with an escape", '{"ab":{%s,"data_offsets":[0,8]},"\\u0061b":{%s,'
     '"data_offsets":[8,16]}}' % (F32x2, F32x2), bytes(16), "duplicate name 'ab'"),
    ("duplicate field", '{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
     ONE, "duplicate name 'dtype'"),
    ("\\u0000 in a name", '{"a\\u0000b":' + F32 + '}', ONE, "\\u0000"),
    ("entry not an object", '{"a":1}', b"", "entry 'a' is not an object"),
    ("unknown dtype", '{"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}', ONE,
     "entry 'a': unknown dtype 'F17'"),
    ("unsupported dtype", '{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', ONE,
     "entry 'a': dtype BF16 is not supported by grove yet"),
    ("dtype not a string", '{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}', ONE,
     "dtype is not a string"),
    ("negative dim", '{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', ONE,
     "entry 'a': shape[0] is not an integer >= 0"),
    ("float dim", '{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', ONE,
     "shape[0] is not an integer >= 0"),
    ("shape not an array", '{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}', ONE,
     "shape is not an array"),
    ("element count overflow", '{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],'
     '"data_offsets":[0,4]}}', ONE, "element count overflows"),
    ("empty but overflowing", '{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],'
     '"data_offsets":[0,0]}}', b"", "entry 'a': element count overflows at dimension 1"),
    ("missing data_offsets", '{"a":{"dtype":"F32","shape":[1]}}', ONE, "missing data_offsets"),
    ("unknown field", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', ONE,
     "unknown field 'x'"),
    ("offsets reversed", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', ONE,
     "data_offsets [4, 0] outside the 4-byte data region"),
    ("offsets out of range", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}', ONE,
     "outside the 4-byte data region"),
    ("offsets past int64", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,'
     '99999999999999999999999]}}', ONE, "[0, 9223372036854775807] outside"),
    ("offsets not a pair", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', ONE,
     "data_offsets is not [begin, end]"),
    ("size mismatch", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', ONE,
     "shape and dtype F32 need 2 elements but data_offsets span 4 bytes"),
    ("offsets overlap", '{"a":{%s,"data_offsets":[0,8]},"b":{%s,"data_offsets":[4,12]}}'
     % (F32x2, F32x2), bytes(16), "entry 'b': data_offsets [4, 12] overlap the previous entry "
     "at data byte 8"),
    ("offsets shared", '{"a":{%s,"data_offsets":[0,8]},"b":{%s,"data_offsets":[0,8]}}'
     % (F32x2, F32x2), bytes(8), "overlap"),
    ("gap", '{"a":{%s,"data_offsets":[8,16]}}' % F32x2, bytes(16),
     "data_offsets [8, 16] leave a gap at data byte 0"),
    ("trailing bytes", '{"a":{%s,"data_offsets":[0,8]}}' % F32x2, bytes(12),
     "entries cover 8 bytes but the data region has 12 (trailing or missing bytes at file "
     "byte 72)"),
    ("bool byte", '{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', b"\x01\x02",
     "entry 'm': bool byte 2 at file byte 65"),
    ("not a tree path", '{"a":' + F32 + ',"a/b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
     ONE * 2, "entry 'a/b' is not a valid tree path: cannot create a/b: a is a tensor leaf"),
    ("empty key in a path", '{"a//b":' + F32 + '}', ONE,
     "invalid path 'a//b': key 2 is empty (keys are separated by '/')"),
    ("metadata not strings", '{"__metadata__":{"format":"grove","version":1}}', b"",
     "__metadata__['version'] is not a string"),
    ("grove version 2", '{"__metadata__":{"format":"grove","version":"2"}}', b"",
     "grove format version '2' (this grove reads 1)"),
    ("grove without checksum", '{"__metadata__":{"format":"grove","version":"1"}}', b"",
     "needs byte_order 'little', checksum_algorithm 'crc32' and a checksum"),
    ("crc mismatch", GROVE_12 % (grove_meta('{"dict":[["a","a"]]}', "00000000"), F32x2),
     struct.pack("<2f", 1, 2), "checksum mismatch: the data region (bytes 224..232) has crc32 "
     + CRC_12 + ", the header says 00000000 (corrupted file)"),
    ("structure names a missing tensor", GROVE_12 % (grove_meta('{"dict":[["a","a"],["b","b"]]}',
                                                                CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "structure: leaf at b: tensor 'b' is not in the header"),
    ("structure names the wrong tensor", GROVE_12 % (grove_meta('{"dict":[["a","b"]]}', CRC_12),
                                                     F32x2),
     struct.pack("<2f", 1, 2), "structure: leaf at a names tensor 'b', expected 'a'"),
    ("tensor not in the structure", GROVE_12 % (grove_meta('{"dict":[]}', CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "entry 'a' is not in the structure"),
    ("tensor used twice", GROVE_12 % (grove_meta('{"dict":[["a","a"],["a","a"]]}', CRC_12),
                                      F32x2), struct.pack("<2f", 1, 2), "used twice"),
    ("list leaf name", GROVE_12 % (grove_meta('{"list":["a"]}', CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "expected '0'"),
    ("bad container kind", GROVE_12 % (grove_meta('{"set":[]}', CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "structure: bad node at <root>"),
    ("key with /", GROVE_12 % (grove_meta('{"dict":[["x/y","a"]]}', CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "structure: bad key 'x/y' at <root>"),
    ("bad dict item", GROVE_12 % (grove_meta('{"dict":[["a"]]}', CRC_12), F32x2),
     struct.pack("<2f", 1, 2), "bad dict item 0 at <root>"),
    ("duplicate key", '{"__metadata__":{%s}}' % grove_meta(
        '{"dict":[["a",{"dict":[]}],["a",{"list":[]}]]}', "00000000"), b"",
     "structure: cannot add key 'a' at <root>: a already exists (a dict)"),
    ("structure not JSON", GROVE_12 % (grove_meta('{"dict":', CRC_12), F32x2),
     struct.pack("<2f", 1, 2),
     "__metadata__ structure is not valid JSON: unexpected end at byte 8"),
    ("structure too deep", '{"__metadata__":{%s}}' % grove_meta(
        '{"list":[' * 1600 + "]}" * 1600, "00000000"), b"",
     "__metadata__ structure is not valid JSON: nesting too deep"),
]


class Malformed(TmpDirTest):
    def files(self):
        out = []
        for i, (name, header, data, needle) in enumerate(MALFORMED):
            raw = header if data is None else craft(header, data)
            out.append((name, self.write(f"bad{i}.safetensors", raw), needle))
        return out

    def test_every_case_names_the_file_and_the_fault(self):
        for name, p, needle in self.files():
            with self.subTest(name):
                with self.assertRaises(CheckpointError) as cm:
                    grove_ckpt.load(p)
                self.assertIn(f"'{p}'", str(cm.exception))
                self.assertIn(needle, str(cm.exception))
                self.assertEqual(cm.exception.path, p)

    def test_c_says_the_same(self):
        files = self.files()
        for (name, p, _), c in zip(files, c_results(self, [p for _, p, _ in files])):
            with self.subTest(name):
                self.assertEqual(py_result(p), c)

    def test_short_and_empty_files(self):
        for n in range(8):
            p = self.write(f"short{n}", bytes(n))
            with self.assertRaisesRegex(CheckpointError, f"'{p}': not a safetensors file: {n} "
                                        "bytes, shorter than the 8-byte header length"):
                grove_ckpt.load(p)
        with self.assertRaisesRegex(FileNotFoundError, "No such file"):
            grove_ckpt.load(self.path("none"))
        with self.assertRaisesRegex(IsADirectoryError, "it is a directory"):
            grove_ckpt.load(self.dir)

    def test_truncated_at_every_offset(self):
        grove_ckpt.save(self.path("s"), sample())
        with open(self.path("s"), "rb") as f:
            raw = f.read()
        sizes = []
        real_preadv = os.preadv

        def preadv(fd, buffers, offset):  # never past the end of the file
            self.assertLessEqual(offset + sum(len(b) for b in buffers), sizes[-1])
            return real_preadv(fd, buffers, offset)

        p = self.path("cut")
        with mock.patch("os.preadv", preadv):
            for cut in range(len(raw)):
                with open(p, "wb") as f:
                    f.write(raw[:cut])
                sizes.append(cut)
                with self.assertRaises(CheckpointError, msg=f"cut at {cut}") as cm:
                    grove_ckpt.load(p)
                self.assertIn(f"'{p}'", str(cm.exception))
        with open(p, "wb") as f:
            f.write(raw + b"\0")
        with self.assertRaisesRegex(CheckpointError, "trailing or missing bytes"):
            grove_ckpt.load(p)

    def test_the_checksum_is_checked(self):
        """Flipping any data byte must be caught: with the CRC check gone,
        most of these files would load with wrong values."""
        grove_ckpt.save(self.path("s"), sample())
        with open(self.path("s"), "rb") as f:
            raw = bytearray(f.read())
        (n,) = struct.unpack("<Q", raw[:8])
        p = self.path("flip")
        for i in range(8 + n, len(raw)):
            raw[i] ^= 0x10
            with open(p, "wb") as f:
                f.write(raw)
            with self.assertRaises(CheckpointError, msg=f"flip at {i}") as cm:
                grove_ckpt.load(p)
            self.assertRegex(str(cm.exception), "checksum mismatch|bool byte")
            raw[i] ^= 0x10
        # the last byte is a float's: only the checksum can see it
        raw[-1] ^= 1
        with open(p, "wb") as f:
            f.write(raw)
        with self.assertRaisesRegex(CheckpointError, f"'{p}': checksum mismatch"):
            grove_ckpt.load(p)

    def test_shapes_numpy_cannot_hold(self):
        """C holds any rank, and empty tensors whose other dimensions multiply
        past 2**63 when a 0 comes first; numpy cannot (README): refused, by
        name, where C reads them."""
        for shape in ([1] * 33, [0, 2**40, 2**40]):
            header = '{"a":{"dtype":"F32","shape":%s,"data_offsets":[0,%d]}}' % (
                json.dumps(shape), 4 * int(np.prod(shape)))
            p = self.write("big", craft(header, ONE if shape[0] else b""))
            with self.assertRaisesRegex(CheckpointError, f"'{p}': entry 'a': numpy cannot hold "
                                        "an array of shape"):
                grove_ckpt.load(p)
            if TOOL:
                self.assertEqual(c_results(self, [p])[0][0], "ok")

    def test_plain_safetensors_files(self):
        import write_checkpoint
        p = self.path("plain.safetensors")
        write_checkpoint.save(p, write_checkpoint.TENSORS, {"format": "np"})
        got = grove_ckpt.load(p)
        t = write_checkpoint.TENSORS
        want = {"encoder": {"layer_0": {}}, "head": {}}
        # header order: by dtype size, then name, as the safetensors package writes
        for name in sorted(t, key=lambda k: (-t[k].dtype.itemsize, k)):
            *parents, leaf = name.split("/")
            node = want
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = t[name]
        self.assertEqual(list(got), [k for k in want if k in got])
        self.assertEqual(set(got), set(want))
        for name, arr in t.items():
            node = got
            for k in name.split("/"):
                node = node[k]
            self.assertTrue(np.array_equal(node, arr) and node.dtype == arr.dtype, name)


class DifferentialFuzz(TmpDirTest):
    """Damaged files, the same verdict and message from Python and C."""

    def seeds(self):
        trees = [sample(), np.arange(3, dtype=np.float32), {"a": {}, "b": [], "c": ()},
                 {"caf\u00e9": {"\u00df": np.array(True)}, "q\"'\\": np.array(2, np.uint64),
                  "l": [[(np.zeros((1, 2), np.uint16),)]]}]
        out = []
        for i, t in enumerate(trees):
            grove_ckpt.save(self.path(f"seed{i}"), t)
            with open(self.path(f"seed{i}"), "rb") as f:
                out.append(f.read())
        import write_checkpoint
        write_checkpoint.save(self.path("plain"), write_checkpoint.TENSORS, {"format": "np"})
        with open(self.path("plain"), "rb") as f:
            out.append(f.read())
        return out

    def mutate_header(self, rng, raw):
        n = struct.unpack("<Q", raw[:8])[0]
        hdr, data = bytearray(raw[8:8 + n]), bytearray(raw[8 + n:])
        for _ in range(rng.randint(1, 3)):
            part = hdr if rng.random() < 0.85 or not data else data
            i = rng.randrange(len(part))
            r = rng.random()
            if r < 0.25:
                part[i] ^= 1 << rng.randrange(8)
            elif r < 0.45:
                part[i] = rng.choice(b'{}[]",:0123456789-. \\u/aeE\'tfnNI\x00\xc3\xff\x80')
            elif r < 0.6:
                del part[i]
            elif r < 0.75:
                part.insert(i, rng.choice(b'{}[]",:0 \\-e.'))
            elif r < 0.9:
                j, k = sorted((rng.randrange(len(part)), rng.randrange(len(part))))
                part[i:i] = part[j:k][:40]
            else:
                del part[i:i + rng.randint(1, 30)]
        r = rng.random()
        n2 = len(hdr) if r < 0.8 else n if r < 0.9 else rng.randrange(len(hdr) + len(data) + 16)
        out = struct.pack("<Q", n2) + bytes(hdr) + bytes(data)
        return out[:rng.randrange(len(out) + 1)] if rng.random() < 0.05 else out

    def mutate_structure(self, rng, raw):
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        if "structure" not in header.get("__metadata__", {}):
            return raw
        s = header["__metadata__"]["structure"]
        tokens = ['{"dict":[', '{"list":[', '{"tuple":[', ']}', "[", "]", ",", '"a"', '"0"',
                  '"params"', '"__root__"', "{}", '{"set":[]}', '"x/y"', '""', '"a\\tb"', "1"]
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(s) + 1)
            r = rng.random()
            if r < 0.4:
                s = s[:i] + rng.choice(tokens) + s[i:]
            elif r < 0.75:
                s = s[:i] + s[i + rng.randint(1, 12):]
            else:
                j, k = sorted((rng.randrange(len(s) + 1), rng.randrange(len(s) + 1)))
                s = s[:i] + s[j:k][:50] + s[i:]
        header["__metadata__"]["structure"] = s
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        return craft(text, raw[8 + n:])

    def test_python_and_c_agree(self):
        rng = random.Random(20240611)
        seeds = self.seeds()
        paths = []
        for i in range(900):
            seed = rng.choice(seeds)
            raw = self.mutate_header(rng, seed) if i % 3 else self.mutate_structure(rng, seed)
            paths.append(self.write(f"m{i}", raw))
        accepted = 0
        for p, c in zip(paths, c_results(self, paths)):
            py = py_result(p)
            accepted += c[0] == "ok"
            self.assertEqual(py, c, p)
        self.assertGreater(accepted, 5)  # some damage still reads, the same way


# ---- C interop -------------------------------------------------------------------

class Interop(TmpDirTest):
    def test_python_reads_what_c_writes(self):
        p = self.path("c.safetensors")
        run_tool(self, "save-sample", p)
        assert_same_tree(self, grove_ckpt.load(p), sample())
        # and writes the same bytes for the same tree
        grove_ckpt.save(self.path("py.safetensors"), sample())
        with open(p, "rb") as a, open(self.path("py.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_c_reads_what_python_writes(self):
        Adam = collections.namedtuple("Adam", "count mu")
        trees = [sample(), np.array(3.5), {}, [], (), {"opt": (Adam(1, {"w": np.ones(2)}),),
                                                       "x": 1.0, "flag": False},
                 {"z": {"y": [np.zeros((2, 0), np.uint32), {"\u00fc\u2028": np.ones(1, ">i4")}]}}]
        paths = []
        for i, t in enumerate(trees):
            paths.append(self.path(f"p{i}"))
            grove_ckpt.save(paths[-1], t)
        for p, c in zip(paths, c_results(self, paths)):
            self.assertEqual(c, py_result(p), p)
            # C saving what it read gives the same bytes
            run_tool(self, "resave", p, p + ".c")
            with open(p, "rb") as a, open(p + ".c", "rb") as b:
                self.assertEqual(a.read(), b.read(), p)


# ---- checkpoint managers ------------------------------------------------------------

class Manager(TmpDirTest):
    def c_steps(self, d, *items):
        """What C's manager lists and restores: (steps, {(step, item): result})."""
        out = run_tool(self, "manager-dump", d, *items)
        steps = out[0]["steps"]
        results = iter(out[1:])
        got = {}
        for s in steps:
            for item in items:
                r = next(results)
                got[s, item] = r["tree"] if r["ok"] else bytes.fromhex(r["error_hex"]).decode()
        return steps, got

    def test_reads_a_directory_c_wrote(self):
        d = self.path("ckpt")
        run_tool(self, "manager-save", d)
        # what the manager ignores: temporaries, other names, files, symlinks
        os.mkdir(os.path.join(d, ".tmp-30-4711-0"))
        os.mkdir(os.path.join(d, "007"))
        os.mkdir(os.path.join(d, "12x"))
        open(os.path.join(d, "40"), "w").close()
        os.symlink(os.path.join(d, "20"), os.path.join(d, "50"))
        mngr = grove_ckpt.CheckpointManager(d)
        self.assertEqual(mngr.all_steps(), [0, 10, 20])
        self.assertEqual(mngr.latest_step(), 20)
        self.assertEqual(mngr.items(10), ["config", "state"])
        for step in (0, 10, 20):
            state = mngr.restore(step)
            assert_same_tree(self, state, {"params": {"w": arange(np.float32, (2, 3), step)},
                                           "step": np.array(step, np.int64)})
            self.assertEqual(mngr.metrics(step)["loss"], np.float32(1 / (step + 1)))
        assert_same_tree(self, mngr.restore(item="config"), {"hidden": np.array(4, np.int32)})
        assert_same_tree(self, mngr.restore(np.int64(10)), mngr.restore(10))
        target = {"step": ShapeDtypeStruct((), "i8"), "params": {"w": np.zeros((2, 3), "f4")}}
        got = mngr.restore(None, target=target)
        self.assertEqual(list(got), ["step", "params"])
        with self.assertRaisesRegex(FileNotFoundError, "no step 5 in"):
            mngr.restore(5)
        with self.assertRaisesRegex(FileNotFoundError, "step 20 has no item 'opt'"):
            mngr.restore(20, item="opt")
        with self.assertRaisesRegex(ValueError, "item name 'a/b' is not valid"):
            mngr.restore(20, item="a/b")
        with self.assertRaisesRegex(CheckpointError, "target vs file: params/w: shape"):
            mngr.restore(20, target={"step": np.int64(0), "params": {"w": np.zeros(6, "f4")}})
        # a damaged file is an error naming it
        with open(os.path.join(d, "20", "state.safetensors"), "r+b") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 1]))
        with self.assertRaisesRegex(CheckpointError, "20/state.safetensors': checksum mismatch"):
            mngr.restore(20)

    def test_c_reads_a_step_python_wrote(self):
        d = self.path("ckpt")
        Adam = collections.namedtuple("ScaleByAdamState", "count mu nu")
        state = {"params": {"Dense_0": {"kernel": np.ones((3, 2), np.float32),
                                        "bias": np.zeros(2, np.float32)}},
                 "opt_state": (Adam(np.array(3, np.int32), {"w": np.ones(2)}, {"w": np.ones(2)}),
                               ()),
                 "step": 7}
        grove_ckpt.save_step(d, 7, {"state": state, "config": {"hidden": 4}},
                             metrics={"loss": np.float32(0.25)})
        grove_ckpt.save_step(d, 9, {"state": state})
        self.assertEqual(self.leftovers(d), [])
        self.assertEqual(sorted(os.listdir(os.path.join(d, "7"))),
                         ["config.safetensors", "metrics.safetensors", "state.safetensors"])
        mngr = grove_ckpt.CheckpointManager(d)
        self.assertEqual(mngr.all_steps(), [7, 9])
        self.assertIsNone(mngr.metrics(9))
        steps, got = self.c_steps(d, "state", "config", "metrics")
        self.assertEqual(steps, [7, 9])
        for (step, item), c in got.items():
            if step == 9 and item != "state":
                self.assertIn(f"step 9 has no item '{item}'", c)
                continue
            self.assertEqual(c, c_node(mngr.restore(step, item=item)), (step, item))
        self.assertEqual(got[7, "metrics"], c_node({"loss": np.array(0.25, np.float32)}))

    def test_save_step_refusals(self):
        d = self.path("ckpt")
        grove_ckpt.save_step(d, 10, {"state": {"a": 1}})
        with self.assertRaisesRegex(FileExistsError, "step 10 already exists"):
            grove_ckpt.save_step(d, 10, {"state": {"a": 2}})
        with self.assertRaisesRegex(ValueError, "step 5 is below the latest step 10"):
            grove_ckpt.save_step(d, 5, {"state": {"a": 2}})
        for name in ("", "metrics", ".hidden", "a/b", "a\\b", "a\nb"):
            with self.assertRaisesRegex(ValueError, "is not valid"):
                grove_ckpt.save_step(d, 11, {name: {"a": 1}})
        with self.assertRaisesRegex(ValueError, "step 11: cannot save item 'b': x: dtype float16 "
                                    "cannot be saved"):
            grove_ckpt.save_step(d, 11, {"a": {"x": 1}, "b": {"x": np.zeros(1, np.float16)}})
        with self.assertRaises(ValueError):
            grove_ckpt.save_step(d, -1, {"a": {}})
        with mock.patch("os.fsync", side_effect=OSError(errno.EIO, "I/O error")), \
                self.assertRaises(OSError):
            grove_ckpt.save_step(d, 12, {"a": {"x": 1}})
        self.assertEqual(grove_ckpt.CheckpointManager(d).all_steps(), [10])
        self.assertEqual(self.leftovers(d), [])
        with self.assertRaises(FileNotFoundError):
            grove_ckpt.CheckpointManager(self.path("none"))
        empty = self.path("empty")
        os.mkdir(empty)
        self.assertIsNone(grove_ckpt.CheckpointManager(empty).latest_step())
        with self.assertRaisesRegex(FileNotFoundError, "no checkpoints in"):
            grove_ckpt.CheckpointManager(empty).restore()


# ---- packaging -------------------------------------------------------------------------

class Packaging(TmpDirTest):
    def test_pip_installs_the_package(self):
        """`pip install ./python`, into a scratch directory, offline."""
        try:
            import setuptools
            del setuptools
            subprocess.run([sys.executable, "-m", "pip", "--version"], check=True,
                           capture_output=True)
        except (ImportError, subprocess.CalledProcessError):
            self.skipTest("pip or setuptools is not installed")
        src = self.path("src")  # a copy: building writes build/ and *.egg-info into it
        shutil.copytree(os.path.join(HERE, "..", "..", "python"), src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                            "--no-build-isolation", "--disable-pip-version-check", "--quiet",
                            "--target", self.path("site"), src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([sys.executable, "-c", "import grove_ckpt; print(grove_ckpt.__file__)"],
                           capture_output=True, text=True, cwd=self.dir,
                           env=dict(os.environ, PYTHONPATH=self.path("site")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(self.path("site")), r.stdout)


if __name__ == "__main__":
    unittest.main()
