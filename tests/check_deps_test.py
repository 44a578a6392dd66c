#!/usr/bin/env python3
"""The rules of scripts/check_deps.py, each on a small tree in a temporary
directory: what passes, what fails and names its site, and that an exception
in ALLOWED that no longer matches fails the check.

Usage: tests/check_deps_test.py [-v]   (ctest: include_direction_rules)
"""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "check_deps.py")

# A tree that keeps every rule: loop includes store and kv, kv includes store.
GOOD_TREE = {
    "engine/store/store.h": "#pragma once\n",
    "engine/kv/turn_kv.h": '#include "engine/store/store.h"\n',
    "engine/loop/turn.cc": '#include "engine/kv/turn_kv.h"\n#include "engine/store/store.h"\n',
    "include/carrel/kv.h": '#include "carrel/status.h"\n',
}
UPWARD = {"engine/kv/kv.cc": '#include "engine/loop/turn.h"\n'}

# (rule, files added to or replaced in GOOD_TREE, text the failure names)
BROKEN = [
    ("rule 1: an include up a layer", UPWARD, "engine/kv/kv.cc:1: rule (1) down only"),
    ("rule 2: two peers that include each other",
     {"engine/alarm/entry.h": '#include "engine/kv/turn_kv.h"\n',
      "engine/kv/kv.cc": '#include "engine/alarm/entry.h"\n'}, "rule (2) no circle"),
    ("rule 3: a public header that includes the engine",
     {"include/carrel/kv.h": '#include "engine/store/store.h"\n'}, "include/carrel/kv.h:1: rule (3)"),
    ("rule 4: a folder without a layer",
     {"engine/cache/cache.h": '#include "engine/store/store.h"\n'}, "engine/cache/ has no layer"),
]


class CheckDepsTest(unittest.TestCase):
    def check(self, files, *args, root_sub=""):
        """(exit status, stdout + stderr) of the script on GOOD_TREE with files."""
        with tempfile.TemporaryDirectory(prefix="carrel-check-deps-") as root:
            for rel, text in {**GOOD_TREE, **files}.items():
                path = os.path.join(root, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            p = subprocess.run([sys.executable, SCRIPT, *args, os.path.join(root, root_sub)],
                               capture_output=True, text=True, timeout=60)
            return p.returncode, p.stdout + p.stderr

    def test_downward_and_one_way_includes_pass(self):
        rc, out = self.check({})
        self.assertEqual(rc, 0, out)
        self.assertIn("check_deps: ok", out)

    def test_each_broken_rule_fails_naming_its_site(self):
        for rule, files, names in BROKEN:
            with self.subTest(rule):
                rc, out = self.check(files)
                self.assertEqual(rc, 1, out)
                self.assertIn(names, out)

    def test_an_allowed_exception_that_still_matches_passes(self):
        rc, out = self.check(UPWARD, "--allow", "engine/kv/kv.cc:engine/loop/turn.h")
        self.assertEqual(rc, 0, out)
        self.assertIn("1 known exceptions allowed", out)

    def test_a_stale_allowed_exception_fails(self):
        rc, out = self.check({}, "--allow", "engine/kv/kv.cc:engine/loop/turn.h")
        self.assertEqual(rc, 1, out)
        self.assertIn("engine/kv/kv.cc: stale exception", out)

    def test_a_malformed_allow_is_refused(self):
        rc, out = self.check({}, "--allow", "engine/kv/kv.cc")
        self.assertEqual(rc, 2, out)
        self.assertIn("--allow takes FILE:HEADER", out)

    def test_a_root_without_engine_is_refused(self):
        rc, out = self.check({}, root_sub="include")
        self.assertEqual(rc, 2, out)
        self.assertIn("has no engine/ folder", out)


if __name__ == "__main__":
    unittest.main()
