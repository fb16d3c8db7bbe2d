#!/bin/sh
# Builds the virtual environment the golden-file scripts run in, with the
# pinned reference stack of tests/golden/requirements.txt (real JAX, Optax,
# Flax, Orbax). grove itself and its tests never need it: the golden files
# it produces are committed.
#
#   sh tests/golden/make-venv.sh            # -> ~/.cache/grove/venv
#   ~/.cache/grove/venv/bin/python tests/golden/make_optax_golden.py
#
# GROVE_VENV overrides the location; PYTHON the interpreter that creates it
# (default: python3 first on PATH, not Debian's /usr/bin/python3, whose
# packages the venv must not mix with).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${GROVE_VENV:-$HOME/.cache/grove/venv}
py=${PYTHON:-python3}
stamp="$venv/.grove-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
    echo "make-venv: $venv is up to date"
    exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
"$venv/bin/python" -c 'import jax, optax, flax; print("make-venv: jax", jax.__version__, "optax", optax.__version__, "flax", flax.__version__)'
