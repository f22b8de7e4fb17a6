#!/usr/bin/env bash
# The whole test suite: sets up .venv, the Node packages and the system programs it runs
# (tests/system-deps.sh: Node.js, nginx), then lint, types and tests.
# Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/system-deps.sh
bash examples/setup.sh
node --version
(cd tests/interop/js && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/typing/ts && npm ci --no-audit --no-fund --loglevel=error)
(cd examples/chat/web && npm ci --no-audit --no-fund --loglevel=error)
(cd capnweb_codegen/ts && npm ci --no-audit --no-fund --loglevel=error)
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy --strict capnweb capnweb_codegen stubs examples
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
if [ $# -eq 0 ]; then  # the whole suite: also the scenarios against the reference itself
  echo "== pytest -m reference (the conformance scenarios against the TypeScript reference)"
  .venv/bin/python -m pytest -q -m reference tests/interop
fi
