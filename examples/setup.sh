#!/usr/bin/env bash
# Creates .venv (if missing) and installs the project with its dev tools into it.
# The editable install also compiles the optional C codec (capnweb/_speedups.c) beside its
# source; without a C compiler capnweb runs in pure Python.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
.venv/bin/python -m pip install -q --disable-pip-version-check -e . --group dev
# A compiled module older than its source (the compiler failed): never run a stale one.
for so in capnweb/_speedups.*.so capnweb/_speedups.*.pyd; do
  if [ -e "$so" ] && [ capnweb/_speedups.c -nt "$so" ]; then
    echo "warning: capnweb/_speedups.c did not compile: removing $so (pure Python)" >&2
    rm -f "$so"
  fi
done
