"""A directory of steps as grove's checkpoint manager writes it
(src/checkpoint/manager.c):

    <directory>/<step>/<item>.safetensors   one file per item
    <directory>/<step>/metrics.safetensors  the metrics tree, when saved
    <directory>/.tmp-<step>-<pid>-<n>/      a step being written (ignored)

A step directory's name is the step in plain decimal ("0" or [1-9][0-9]*);
every other entry is ignored. A step appears complete or not at all: it is
written under a temporary name and renamed."""

import errno
import itertools
import operator
import os
import re
import shutil
import stat

from . import _read, _tree, _write

METRICS = "metrics"
SUFFIX = ".safetensors"
_STEP = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_counter = itertools.count()  # temporary names never repeat within a process


def _parse_step(name):
    if not _STEP.match(name):
        return None
    step = int(name)
    return step if step <= 2**63 - 1 else None


def _item_problem(name):
    """Why name is not a valid item name, as C's valid_item_name, or None."""
    if not isinstance(name, str) or not name:
        return "empty" if name == "" else "not a string"
    if name.startswith("."):
        return "it starts with '.'"
    if name == METRICS:
        return "'metrics' is reserved for the metrics"
    try:
        raw = name.encode()
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if any(c < 0x20 or c == 0x7F or c in b"/\\" for c in raw):
        return "it has a control character, '/' or '\\'"
    return None


def _check_step(step):
    """The step as an int (numpy integers too); TypeError, ValueError."""
    if isinstance(step, bool):
        raise TypeError(f"step {step!r} is not an int")
    try:
        step = operator.index(step)
    except TypeError:
        raise TypeError(f"step {step!r} is not an int") from None
    if step < 0:
        raise ValueError(f"step {step} is negative")
    return step


def all_steps(directory):
    steps = []
    for name in os.listdir(directory):
        step = _parse_step(name)
        if step is None:
            continue
        try:  # a directory, not a symlink to one (lstat, as C)
            if stat.S_ISDIR(os.lstat(os.path.join(directory, name)).st_mode):
                steps.append(step)
        except FileNotFoundError:  # deleted meanwhile
            pass
    return sorted(steps)


class CheckpointManager:
    """Reads a directory of steps written by grove's checkpoint manager
    (``gv_checkpoint_manager_save``) or by :func:`save_step`, as Orbax's
    ``CheckpointManager`` reads its own::

        mngr = grove_ckpt.CheckpointManager("ckpt")
        mngr.all_steps()                     # [0, 800, 900, 1000]
        state = mngr.restore(mngr.latest_step())          # item 'state'
        config = mngr.restore(1000, item="config")
        mngr.metrics(1000)                   # {'loss': array(0.25, dtype=float32)}

    The directory is listed at every call (grove may be writing into it):
    steps appear when their directory is renamed into place, complete.
    It is only read; steps are written by :func:`save_step`.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        if not os.path.isdir(self.directory):
            if os.path.exists(self.directory):
                raise NotADirectoryError(errno.ENOTDIR,
                                         f"'{os.fsdecode(self.directory)}' is not a directory")
            raise FileNotFoundError(errno.ENOENT,
                                    f"no checkpoint directory '{os.fsdecode(self.directory)}'")

    def __repr__(self):
        return f"CheckpointManager({self.directory!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Nothing to release (as Orbax's close, for with-statements)."""

    def all_steps(self):
        """The steps on disk, ascending."""
        return all_steps(self.directory)

    def latest_step(self):
        """The highest step, or None if there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def _step_dir(self, step, fn):
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(errno.ENOENT, f"{fn}: no checkpoints in "
                                                      f"'{os.fsdecode(self.directory)}'")
        step = _check_step(step)
        path = os.path.join(self.directory, str(step))
        if _parse_step(str(step)) is None or not os.path.isdir(path) or os.path.islink(path):
            raise FileNotFoundError(errno.ENOENT, f"{fn}: no step {step} in "
                                                  f"'{os.fsdecode(self.directory)}'")
        return step, path

    def items(self, step=None):
        """The item names saved at step (default: the latest), sorted;
        'metrics' is not an item."""
        _, path = self._step_dir(step, "items")
        names = []
        for f in os.listdir(path):
            name = f[:-len(SUFFIX)] if f.endswith(SUFFIX) else None
            if name and _item_problem(name) is None and os.path.isfile(os.path.join(path, f)):
                names.append(name)
        return sorted(names)

    def restore(self, step=None, item="state", target=None):
        """One item of a step (default: the latest step), as saved or in
        target's structure (see :func:`grove_ckpt.load`). FileNotFoundError
        for a missing step or item; CheckpointError for a bad file."""
        if item != METRICS and _item_problem(item):
            raise ValueError(f"restore: item name {item!r} is not valid ({_item_problem(item)})")
        step, path = self._step_dir(step, "restore")
        return self._load(step, os.path.join(path, item + SUFFIX), item, target, "restore")

    def metrics(self, step=None):
        """The metrics tree saved with step (default: the latest), or None
        if the step was saved without metrics."""
        step, path = self._step_dir(step, "metrics")
        file = os.path.join(path, METRICS + SUFFIX)
        if not os.path.lexists(file):
            return None
        return self._load(step, file, METRICS, None, "metrics")

    def _load(self, step, file, item, target, fn):
        try:
            tree, grove = _read.read_tree(file)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, f"{fn}: step {step} has no item '{item}' "
                                                  f"('{os.fsdecode(file)}': No such file or "
                                                  "directory)") from None
        if target is None:
            return tree
        return _tree.restore_into(os.fsdecode(file), tree, grove, target)


def save_step(directory, step, items, metrics=None):
    """Write one step the way grove's checkpoint manager does, so that
    ``gv_checkpoint_manager_restore`` (and :class:`CheckpointManager`)
    read it::

        grove_ckpt.save_step("ckpt", 1000, {"state": state, "config": config},
                             metrics={"loss": 0.25})

    items maps item names (non-empty, printable, no '/' or '\\\\', not
    starting with '.', not 'metrics') to trees, saved as
    ``<directory>/<step>/<name>.safetensors``; metrics, a tree, as
    ``metrics.safetensors``. The directory is created if missing. The step
    is written into ``<directory>/.tmp-<step>-<pid>-<n>/`` (each file
    fsynced), which is fsynced and renamed to ``<directory>/<step>``, and
    the directory is fsynced: the step appears complete or not at all, and
    a failure leaves no temporary behind.

    Refused as by the C manager: an existing step (FileExistsError), a step
    below the latest one (ValueError), a bad item name (ValueError). No
    retention: older steps are never deleted.
    """
    step = _check_step(step)
    if not isinstance(items, dict) or not items:
        raise ValueError(f"step {step}: items must be a non-empty dict of name -> tree")
    for name in items:
        problem = _item_problem(name)
        if problem:
            raise ValueError(f"step {step}: item name {name!r} is not valid ({problem}; item "
                             "names are non-empty, printable, without '/' or '\\', not "
                             "starting with '.', not 'metrics')")
    directory = os.fspath(directory)
    label = os.fsdecode(directory)
    os.makedirs(directory, exist_ok=True)
    steps = all_steps(directory)
    final = os.path.join(directory, str(step))
    if step in steps or os.path.lexists(final):
        raise FileExistsError(errno.EEXIST, f"step {step} already exists in '{label}'")
    if steps and step < steps[-1]:
        raise ValueError(f"step {step} is below the latest step {steps[-1]} in '{label}' "
                         "(delete the newer steps first)")
    # every tree is checked before anything is written
    encoded = []
    for name, tree in list(items.items()) + ([(METRICS, metrics)] if metrics is not None else []):
        try:
            encoded.append((name, _write.encode(tree)))
        except ValueError as e:
            what = "metrics" if name == METRICS else f"item '{name}'"
            raise ValueError(f"step {step}: cannot save {what}: {e}") from None
    tmp = os.path.join(directory, f"{_write.TMP_MARKER}{step}-{os.getpid()}-{next(_counter)}")
    os.mkdir(tmp)
    try:
        for name, chunks in encoded:
            _write.atomic_write(os.path.join(tmp, name + SUFFIX), chunks, False)
        _write.fsync_dir(tmp)
        try:
            _write.rename_noreplace(tmp, final)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(errno.EEXIST, f"step {step}: '{os.fsdecode(final)}' "
                                                    "already exists") from None
            raise
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _write.fsync_dir(directory)
