"""Run an unmodified asyncore/asynchat program on sockloop.

    python -m sockloop program.py [args...]
    python -m sockloop -m module [args...]

``asyncore`` and ``asynchat`` are sockloop's for the whole run (on Python 3.11
and earlier this replaces the standard library's, on request: that is what this
command is for).
"""

import os
import runpy
import sys

from . import install


def main(argv):
    if not argv or argv[0] in ("-h", "--help") or argv[0] == "-m" and len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    install(replace_stdlib=True)
    if argv[0] == "-m":
        sys.argv = [argv[1]] + argv[2:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
