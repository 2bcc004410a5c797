"""Runs every Python test of the package and prints one closing line:
``N passed, N failed, N skipped``; exits non-zero on any failure.

    python tests/run_all.py [--cpython-tests DIR]

Groups, each in its own interpreter:

* ``cpython``: CPython's own ``test_asyncore.py`` and ``test_asynchat.py`` with only
  the import changed (``warnings_helper.import_deprecated('asyncore')`` becomes
  ``sockloop.asyncore``). The files come from DIR, else from this Python's ``test``
  package (CPython <= 3.11). They are patched into a temporary directory, never
  committed.
* ``cpython-epoll``: the same suites, with ``loop(use_poll=True)`` running on
  ``backend="epoll"``: epoll's cached registrations against CPython's expectations.
* ``own``: ``test_sockloop.py``, the Rust-specific paths.
* ``smtpd``: ``test_smtpd.py``, CPython's smtpd with concurrent smtplib clients.

A failure listed in DELIBERATE is a documented difference from CPython: it is
counted as skipped, with its reason printed, not as a failure.
"""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# Test id (prefix) -> reason. Keep in step with the README's list of differences.
DELIBERATE = {
    "test_asyncore.DispatcherTests.test_repr":
        "repr() names the class's real module: '<sockloop.asyncore.dispatcher at ...>', "
        "not '<asyncore.dispatcher at ...>'",
}

IMPORTS = {
    "warnings_helper.import_deprecated('asyncore')": "__import__('sockloop.asyncore').asyncore",
    "warnings_helper.import_deprecated('asynchat')": "__import__('sockloop.asynchat').asynchat",
}


def find_cpython_tests(explicit):
    names = ("test_asyncore.py", "test_asynchat.py")
    candidates = [explicit] if explicit else []
    if os.environ.get("CPYTHON_TESTS"):
        candidates.append(os.environ["CPYTHON_TESTS"])
    try:
        spec = importlib.util.find_spec("test.test_asyncore")
    except ImportError:
        spec = None
    if spec and spec.origin:
        candidates.append(os.path.dirname(spec.origin))
    for d in candidates:
        found = [os.path.join(d, n) for n in names]
        if not all(os.path.exists(f) for f in found):
            # the pyasyncore / pyasynchat sdists keep them under */tests/
            found = []
            for n in names:
                for root, _, files in os.walk(d):
                    if n in files:
                        found.append(os.path.join(root, n))
                        break
        if len(found) == 2:
            return found
    return None


def patch_into(files, dest):
    for path in files:
        with open(path) as f:
            text = f.read()
        changed = 0
        for old, new in IMPORTS.items():
            changed += text.count(old)
            text = text.replace(old, new)
        if not changed:
            raise SystemExit("%s: the import to change was not found" % path)
        with open(os.path.join(dest, os.path.basename(path)), "w") as f:
            f.write(text)


def base_id(test):
    return getattr(test, "test_case", test).id()


class CountingResult(unittest.TextTestResult):
    """Counts passes directly (testsRun's treatment of skips differs across versions)."""

    successes = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.successes += 1


def run_group(group, directory):
    """In the child: run one group, print RESULT {json}."""
    sys.path.insert(0, directory)
    if group == "cpython-epoll":
        from sockloop import asyncore
        plain = asyncore.loop

        def loop(timeout=30.0, use_poll=False, map=None, count=None):
            plain(timeout, False, map, count, backend="epoll" if use_poll else None)

        asyncore.loop = loop
    modules = {"cpython": ["test_asyncore", "test_asynchat"],
               "cpython-epoll": ["test_asyncore", "test_asynchat"],
               "own": ["test_sockloop"],
               "smtpd": ["test_smtpd"]}[group]
    suite = unittest.defaultTestLoader.loadTestsFromNames(modules)
    result = unittest.TextTestRunner(verbosity=1, stream=sys.stderr,
                                     resultclass=CountingResult).run(suite)
    failed, deliberate = [], []
    for test, _ in result.failures + result.errors + [(t, "") for t in result.unexpectedSuccesses]:
        tid = base_id(test)
        reason = next((r for p, r in DELIBERATE.items() if tid.startswith(p)), None)
        (deliberate if reason else failed).append((test.id(), reason))
    skipped = len(result.skipped) + len(deliberate)
    passed = result.successes
    print("RESULT " + json.dumps({"passed": passed, "failed": len(failed), "skipped": skipped,
                                  "failures": [t for t, _ in failed],
                                  "deliberate": deliberate,
                                  "skips": [(t.id(), r) for t, r in result.skipped]}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpython-tests", help="directory holding test_asyncore.py and test_asynchat.py")
    ap.add_argument("--group", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", help="groups to run (default: all)")
    args = ap.parse_args()
    if args.group:
        run_group(args.group, args.dir)
        return 0

    groups = args.only or ["cpython", "cpython-epoll", "own", "smtpd"]
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("test_sockloop.py", "test_smtpd.py"):
            with open(os.path.join(HERE, name)) as f, open(os.path.join(tmp, name), "w") as g:
                g.write(f.read())
        files = find_cpython_tests(args.cpython_tests)
        if any(g.startswith("cpython") for g in groups):
            if sys.version_info < (3, 10):
                print("CPython 3.11's test_asyncore/test_asynchat need test.support from "
                      "Python >= 3.10: not run on %d.%d" % sys.version_info[:2])
                groups = [g for g in groups if not g.startswith("cpython")]
            elif files is None:
                print("CPython's test_asyncore.py/test_asynchat.py not found: pass "
                      "--cpython-tests DIR (python/test.sh fetches them)", file=sys.stderr)
                totals["failed"] += 1
                groups = [g for g in groups if not g.startswith("cpython")]
            else:
                patch_into(files, tmp)
                print("CPython suites from: %s" % ", ".join(files))
        for group in groups:
            print("== %s" % group, flush=True)
            proc = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning",
                                   os.path.abspath(__file__), "--group", group, "--dir", tmp],
                                  cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=600)
            m = re.search(r"^RESULT (.*)$", proc.stdout, re.M)
            if not m:
                sys.stderr.write(proc.stderr[-5000:])
                print("   group %s crashed (exit %d)" % (group, proc.returncode))
                totals["failed"] += 1
                continue
            r = json.loads(m.group(1))
            if r["failed"]:
                sys.stderr.write(proc.stderr[-20000:])
            for tid in r["failures"]:
                print("   FAILED %s" % tid)
            for tid, reason in r["deliberate"]:
                print("   deliberate difference %s: %s" % (tid, reason))
            print("   %d passed, %d failed, %d skipped" % (r["passed"], r["failed"], r["skipped"]))
            for k in totals:
                totals[k] += r[k]
    print("%d passed, %d failed, %d skipped" % (totals["passed"], totals["failed"], totals["skipped"]))
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
