"""Every test module has a basename of its own: the test directories are not packages, so pytest imports each
module by its basename, and a second file of the same name anywhere under tests/ is not collected ("import file
mismatch") - the whole run then fails on collection, which only a full run shows."""

from __future__ import annotations

import collections
import pathlib

TESTS = pathlib.Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename():
    by_name = collections.defaultdict(list)
    for path in TESTS.rglob('test_*.py'):
        if '__pycache__' not in path.parts:
            by_name[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
