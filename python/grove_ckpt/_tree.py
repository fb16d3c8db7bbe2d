"""Python trees as grove sees them: a Mapping (dict, OrderedDict, Flax's
FrozenDict) or a namedtuple is a dict, a list a list, a tuple a tuple, and
anything else a leaf. Walks are iterative: a tree read from a file may nest
deeper than Python's recursion limit."""

import json
from collections.abc import Mapping

import numpy as np

from ._format import (DTYPES, INT64_MAX, INT64_MIN, METADATA, ROOT_NAME, SUPPORTED_NAMES,
                      CheckpointError, crepr, dtype_label, key_problem, shape_str, st_name)


def kind(node):
    """"dict", "list", "tuple" or "leaf"."""
    if isinstance(node, Mapping):
        return "dict"
    if isinstance(node, tuple):
        return "dict" if hasattr(type(node), "_fields") else "tuple"
    if isinstance(node, list):
        return "list"
    return "leaf"


def items(node, k):
    """(key, child) pairs in the node's own order; keys are str for dicts
    (namedtuples: their fields), int for lists and tuples."""
    if k == "dict":
        if isinstance(node, tuple):  # a namedtuple, as flax.serialization.to_state_dict
            return list(zip(node._fields, node))
        return list(node.items())
    return list(enumerate(node))


def show(path):
    return "/".join(str(k) for k in path) or "<root>"


def node_name(node):
    k = kind(node)
    return "tensor" if k == "leaf" else k


# ---- saving ------------------------------------------------------------------

def as_array(x, where):
    """A leaf as the array grove writes: numpy arrays as they are (contiguous,
    little-endian), numpy scalars and objects with __array__ (jax.Array) via
    np.asarray, Python bool/int/float as 0-d bool/int64/float64."""
    if isinstance(x, bool):
        a = np.array(x, np.bool_)
    elif isinstance(x, int):
        if not INT64_MIN <= x <= INT64_MAX:
            raise ValueError(f"{where}: the int {x} does not fit in int64")
        a = np.array(x, np.int64)
    elif isinstance(x, float):
        a = np.array(x, np.float64)
    elif x is None:
        raise ValueError(f"{where}: None is not an array (grove stores no None; drop it or "
                         "use an empty dict)")
    elif isinstance(x, (str, bytes)):
        raise ValueError(f"{where}: cannot save a leaf of type {type(x).__name__}")
    else:
        a = np.asarray(x)
        if a.dtype == object and not isinstance(x, np.ndarray):
            raise ValueError(f"{where}: cannot save a leaf of type {type(x).__name__} (not an "
                             "array, dict, list or tuple; a Flax struct: "
                             "flax.serialization.to_state_dict first)")
    name = st_name(a.dtype)
    if name is None:
        raise ValueError(f"{where}: dtype {a.dtype.name} cannot be saved (grove saves "
                         f"{SUPPORTED_NAMES})")
    a = np.asarray(a, dtype=DTYPES[name], order="C")  # byte-swaps big-endian data
    if name == "BOOL":
        raw = a.reshape(-1).view(np.uint8)
        if raw.size and raw.max() > 1:  # a view of other bytes as bool: write 0/1
            a = (raw != 0).reshape(a.shape)
    return name, a


def flatten(tree):
    """(structure JSON text, [(tensor name, st dtype, array)] in flatten
    order: dict keys sorted, as jax and grove flatten). Raises ValueError
    naming the path of a bad key or leaf."""
    out = []      # pieces of the structure text
    leaves = []   # (path tuple, name, dtype, array)
    open_ids = set()
    # frames: [node id, [(key, child)], next index, path, kind]
    stack = []

    def visit(node, path):
        k = kind(node)
        if k == "leaf":
            name = "/".join(str(p) for p in path) or ROOT_NAME
            if name == METADATA:
                raise ValueError("the key '__metadata__' is reserved by safetensors")
            dtype, a = as_array(node, show(path))
            leaves.append((path, name, dtype, a))
            out.append(json.dumps(name, ensure_ascii=False))
            return
        if id(node) in open_ids:
            raise ValueError(f"{show(path)}: the tree contains itself")
        pairs = items(node, k)
        if k == "dict":
            for key, _ in pairs:
                problem = key_problem(key)
                if problem:
                    raise ValueError(f"{show(path)}: {problem} (keys are non-empty strings of "
                                     "printable characters without '/')")
        open_ids.add(id(node))
        out.append('{"%s":[' % k)
        stack.append([id(node), pairs, 0, path, k])

    visit(tree, ())
    while stack:
        frame = stack[-1]
        ident, pairs, i, path, k = frame
        if i == len(pairs):
            stack.pop()
            open_ids.discard(ident)
            out.append("]]}" if k == "dict" and pairs else "]}")
            continue
        frame[2] = i + 1
        key, child = pairs[i]
        if k == "dict":
            out.append(("],[" if i else "[") + json.dumps(key, ensure_ascii=False) + ",")
        elif i:
            out.append(",")
        visit(child, path + (key,))
    leaves.sort(key=lambda leaf: leaf[0])
    return "".join(out), [(name, dtype, a) for _, name, dtype, a in leaves]


# ---- restoring into a target -------------------------------------------------

def _leaf_spec(x, where):
    """(shape, dtype) of a target leaf: an array, or anything with .shape and
    .dtype (jax.ShapeDtypeStruct); Python scalars as save() stores them."""
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        _, a = as_array(x, where)
        return a.shape, a.dtype
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"target: {where}: a {type(x).__name__} is not an array, a "
                        "ShapeDtypeStruct, a dict, a list or a tuple")
    return tuple(int(d) for d in shape), np.dtype(dtype)


def _same_dtype(a, b):
    na, nb = st_name(a), st_name(b)
    return na is not None and na == nb


def _check_same(target, tree):
    """The first difference of the file's tree from the target, in flatten
    order (gv_tree_check_same), or None."""
    stack = [(target, tree, ())]
    while stack:
        a, b, path = stack.pop()
        p = show(path)
        ka, kb = kind(a), kind(b)
        if ka != kb:
            return f"{node_name(a)} vs {node_name(b)} at {p}"
        if ka == "leaf":
            shape, dtype = _leaf_spec(a, p)
            if shape != b.shape:
                return f"{p}: shape {shape_str(shape)} vs {shape_str(b.shape)}"
            if not _same_dtype(dtype, b.dtype):
                return f"{p}: dtype {dtype_label(dtype)} vs {dtype_label(b.dtype)}"
            continue
        pa, pb = items(a, ka), items(b, kb)
        if ka == "dict":
            for key, _ in pa:
                if not isinstance(key, str):
                    raise TypeError(f"target: {p}: key {key!r} is not a string")
            da, db = dict(pa), dict(pb)
            ka_sorted, kb_sorted = sorted(da), sorted(db)
            for x, y in zip(ka_sorted + [None], kb_sorted + [None]):
                if x != y:
                    missing = y is None or (x is not None and x < y)
                    k = x if missing else y
                    return (f"{'missing' if missing else 'unexpected'} key "
                            f"{crepr(k.encode())} at {p}")
            children = [(da[k], db[k], path + (k,)) for k in ka_sorted]
        else:
            if len(pa) != len(pb):
                return f"{ka} length {len(pa)} vs {len(pb)} at {p}"
            children = [(x, y, path + (i,)) for (i, x), (_, y) in zip(pa, pb)]
        stack.extend(reversed(children))
    return None


def _target_leaves(target):
    """[(path, leaf)] of the target in flatten order."""
    out = []
    stack = [(target, ())]
    while stack:
        node, path = stack.pop()
        k = kind(node)
        if k == "leaf":
            out.append((path, node))
            continue
        pairs = items(node, k)
        if k == "dict":
            pairs = sorted(pairs, key=lambda kv: kv[0])
        stack.extend((child, path + (key,)) for key, child in reversed(pairs))
    return out


def _make(node, k, keys, values):
    """A container of the target node's type holding values."""
    if k == "dict":
        if isinstance(node, tuple):
            return type(node)(*values)
        d = dict(zip(keys, values))
        if type(node) is dict:
            return d
        try:
            return type(node)(d)
        except Exception:  # a Mapping that cannot be built from a dict
            return d
    if k == "list":
        return values
    if type(node) is tuple:
        return tuple(values)
    try:
        return type(node)(values)
    except Exception:
        return tuple(values)


def rebuild(target, leaf_at):
    """The target's structure (its container types and key order) with
    leaf_at(path) at every leaf."""
    stack = []

    def visit(node, path):
        k = kind(node)
        if k == "leaf":
            return leaf_at(path), None
        pairs = items(node, k)
        return None, [node, k, pairs, 0, [], path]

    value, frame = visit(target, ())
    if frame is None:
        return value
    stack.append(frame)
    while True:
        frame = stack[-1]
        node, k, pairs, i, values, path = frame
        if i == len(pairs):
            stack.pop()
            done = _make(node, k, [key for key, _ in pairs], values)
            if not stack:
                return done
            stack[-1][4].append(done)
            continue
        frame[3] = i + 1
        key, child = pairs[i]
        value, sub = visit(child, path + (key,))
        if sub is None:
            values.append(value)
        else:
            stack.append(sub)


def _get(tree, path):
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, np.ndarray) else None


def _count_leaves(tree):
    n, stack = 0, [tree]
    while stack:
        node = stack.pop()
        k = kind(node)
        if k == "leaf":
            n += 1
        else:
            stack.extend(child for _, child in items(node, k))
    return n


def restore_into(label, tree, grove, target):
    """The file's tree in the target's structure, after checking every path,
    shape and dtype as gv_checkpointer_restore_into does."""
    def fail(msg):
        raise CheckpointError(f"'{label}': {msg}", label)

    if grove:
        # the kinds saved must match: a tuple never becomes a list or dict
        diff = _check_same(target, tree)
        if diff:
            fail(f"target vs file: {diff}")

        def at(path):
            node = tree
            for key in path:
                node = node[key]
            return node
        return rebuild(target, at)
    # a plain safetensors file has only names: match the target's paths
    leaves = _target_leaves(target)
    found = {}
    root_leaf = kind(target) == "leaf"
    for path, leaf in leaves:
        p = ROOT_NAME if root_leaf else show(path)
        shape, dtype = _leaf_spec(leaf, show(path))
        arr = _get(tree, (ROOT_NAME,) if root_leaf else tuple(str(k) for k in path))
        if arr is None:
            fail(f"{show(path)}: in the target but not in the file")
        if shape != arr.shape or not _same_dtype(dtype, arr.dtype):
            fail(f"{p}: target {dtype_label(dtype)} {shape_str(shape)} vs file "
                 f"{dtype_label(arr.dtype)} {shape_str(arr.shape)}")
        found[path] = arr
    n = _count_leaves(tree)
    if n != len(leaves):
        fail(f"the file has {n} tensors, the target {len(leaves)} leaves")
    return rebuild(target, found.__getitem__)
