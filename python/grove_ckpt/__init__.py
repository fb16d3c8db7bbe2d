"""grove_ckpt: grove's checkpoints from Python (numpy only).

grove, a C library in the style of JAX/Flax/Optax, saves trees of tensors
("params/encoder/Dense_0/kernel") as safetensors files whose metadata keeps
the tree's structure (dict key order, lists vs tuples, empty subtrees) and a
CRC-32 of the data. This package reads and writes them exactly as grove
does, with Orbax's names::

    import grove_ckpt

    state = grove_ckpt.load("state.safetensors")          # the tree as saved
    grove_ckpt.save("params.safetensors", {"params": params})

    mngr = grove_ckpt.CheckpointManager("ckpt")            # grove's step directories
    state = mngr.restore(mngr.latest_step())
    grove_ckpt.save_step("ckpt", 2000, {"state": state}, metrics={"loss": 0.1})

Reading is as strict as grove's C reader: a malformed or corrupted file is a
:class:`CheckpointError` (a ValueError) naming the file and what was wrong.
"""

import os

from . import _read, _tree, _write
from ._format import CheckpointError
from ._manager import CheckpointManager, save_step

__all__ = ["load", "save", "CheckpointManager", "save_step", "CheckpointError"]
__version__ = "0.1.0"


def load(path, target=None):
    """Read the checkpoint at path.

    Without target, the tree as it was saved: nested dicts (key order
    kept), lists and tuples of numpy arrays (a 0-d array for a scalar),
    empty containers included. A safetensors file without grove metadata
    (written by Python's ``safetensors``) becomes nested dicts, its names
    split at '/'::

        tree = grove_ckpt.load("state.safetensors")
        tree["params"]["Dense_0"]["kernel"].shape       # (784, 128)
        # for Flax: jax.tree.map(jnp.asarray, tree["params"])

    With target, a tree of arrays or of anything with ``.shape`` and
    ``.dtype`` (``jax.ShapeDtypeStruct``, e.g. from ``jax.eval_shape``),
    every path, shape and dtype is checked as ``gv_checkpointer_restore_into``
    does, and the result has the target's containers (dict, FrozenDict,
    namedtuple, list, tuple) and key order::

        abstract = jax.eval_shape(model.init, key, x)
        variables = grove_ckpt.load("params.safetensors", target=abstract)

    For a grove file the kinds must match too (a tuple never becomes a
    list; a namedtuple in the target matches the dict it was saved as).

    Raises CheckpointError (a ValueError) for a malformed or corrupted file
    or a target that does not match, naming the file and the fault
    (``'x.safetensors': target vs file: params/w: shape (3,) vs (4,)``);
    FileNotFoundError and other OSErrors for what the system refuses;
    TypeError for a target leaf that has no shape and dtype.
    """
    tree, grove = _read.read_tree(path)
    if target is None:
        return tree
    return _tree.restore_into(os.fsdecode(path), tree, grove, target)


def save(path, tree, force=False):
    """Write tree to path as a grove checkpoint, which grove's
    ``gv_checkpointer_restore`` reads back with the same structure::

        grove_ckpt.save("params.safetensors", {"params": params})
        # from Flax: a TrainState or FrozenDict via its state dict
        grove_ckpt.save("state.safetensors", flax.serialization.to_state_dict(state))

    tree: nested Mappings (dict, OrderedDict, Flax's FrozenDict), lists and
    tuples; a namedtuple (an Optax state) is saved as the dict of its
    fields, as ``flax.serialization.to_state_dict`` stores it. Keys are
    non-empty strings of printable characters without '/'; a leaf may not
    be named ``__metadata__``. Leaves: numpy arrays, numpy scalars, anything
    ``np.asarray`` turns into an array (``jax.Array``), and Python bool, int
    and float, saved as 0-d bool, int64 and float64 arrays. The dtypes are
    grove's: bool, uint8, uint16, uint32, uint64, int32, int64, float32 and
    float64; any other (float16, bfloat16, int8, int16, complex, object) is
    a ValueError naming the path and the dtype.

    The write is atomic: a temporary file in the same directory, fsynced,
    renamed to path, the directory fsynced. A failure leaves the old file
    (if any) intact and no temporary. FileExistsError if path exists,
    unless force.
    """
    _write.save(path, tree, force)
