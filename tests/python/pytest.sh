#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pytest.sh: the Python package's tests (python/tests/) with pytest, on
# Debian's /usr/bin/python3, against the package `make python` built in
# place (make test builds it first). LB_PYTHON is the interpreter; make
# test leaves it empty under sanitizers (an uninstrumented interpreter
# cannot load an instrumented library), and this script then says so and
# runs nothing. LB_PY_LONG=1 runs the long mode, LB_PY_SEED=N one seed.
set -euo pipefail
cd "$(dirname "$0")/../.."

py=${LB_PYTHON-/usr/bin/python3}
if [ -z "$py" ]; then
  echo "pytest.sh: not run in a sanitizer build (see tests/python/pytest.sh)"
  exit 0
fi
if ! ls python/logbook/_logbook*.so >/dev/null 2>&1; then
  echo "pytest.sh: the package is not built: run make python" >&2
  exit 1
fi
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
exec "$py" -m pytest -q -p no:cacheprovider -o addopts= python/tests
