# SPDX-License-Identifier: MIT
"""Fixtures of the logbook package's tests.

The package is imported from python/ (built in place by `make python`) or
from wherever it is installed; examples/daily_updater.py, the pipeline,
is imported from the tree. Randomized tests take their seed from
LB_PY_SEED (default: a fixed one) and print it when they fail. The long
mode (LB_PY_LONG=1) runs the randomized and integration tests on more
data.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import logbook  # noqa: E402
import daily_updater  # noqa: E402

LONG = os.environ.get("LB_PY_LONG", "") not in ("", "0")
SEED = int(os.environ.get("LB_PY_SEED", "20240314"))

HEARINGS = daily_updater.SCHEMA["hearings"]
WITNESSES = daily_updater.SCHEMA["witnesses"]
DOCUMENTS = daily_updater.SCHEMA["documents"]


@pytest.fixture
def seed(request):
    """The seed of a randomized test, printed when it fails."""
    yield SEED
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print("\n%s: seed %d (rerun with LB_PY_SEED=%d)" %
              (request.node.nodeid, SEED, SEED))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.when == "call" and rep.failed and "seed" in item.fixturenames:
        rep.sections.append(("seed", "LB_PY_SEED=%d" % SEED))


@pytest.fixture
def dbdir(tmp_path):
    return str(tmp_path / "db")


@pytest.fixture
def db(dbdir):
    d = logbook.open(dbdir, sync=False)
    yield d
    d.close()


@pytest.fixture
def feed(db):
    """A database with the feed's three tables."""
    daily_updater.DailyUpdater(db).setup()
    return db


def hearing(key, **kw):
    v = {"id": key, "title": "A hearing", "date": "2024-03-14",
         "committee": "Committee on Finance", "chamber": "House",
         "congress": 118}
    v.update(kw)
    return v


def witness(key, hearing_id, **kw):
    v = {"id": key, "hearing_id": hearing_id, "name": "Ada Lovelace",
         "organization": None}
    v.update(kw)
    return v


def document(key, hearing_id, **kw):
    v = {"id": key, "hearing_id": hearing_id, "type": "report",
         "url": "https://example.org/" + key}
    v.update(kw)
    return v
