"""sockloop: asyncore and asynchat for Python 3.8+, on sockloop's Rust event loop.

``sockloop.asyncore`` and ``sockloop.asynchat`` have every public name of
CPython 3.11's modules, with the same semantics; the wait and the event routing
run in Rust (select, poll, or epoll with ``loop(backend="epoll")``), with the
GIL released while waiting.

To run an unmodified program that does ``import asyncore``::

    import sockloop
    sockloop.install()           # Python 3.12+
    sockloop.install(replace_stdlib=True)   # Python 3.8-3.11

or, without touching the program: ``python -m sockloop program.py [args]`` or
``python -m sockloop -m module [args]``.
"""

import importlib.util
import sys

from . import asynchat, asyncore

__all__ = ["asyncore", "asynchat", "install"]
__version__ = "0.1.0"

_NAMES = (("asyncore", asyncore), ("asynchat", asynchat))


def install(*, replace_stdlib=False):
    """Make ``import asyncore`` / ``import asynchat`` give sockloop's modules.

    Registers :mod:`sockloop.asyncore` and :mod:`sockloop.asynchat` in
    ``sys.modules`` under the names ``asyncore`` and ``asynchat``. Call it before
    the program imports them. It never shadows anything silently:

    * On Python 3.12 and later the standard library has no such modules; the
      names are registered (a pure-Python copy such as pyasyncore, if installed
      but not yet imported, is bypassed).
    * On Python 3.11 and earlier the standard library has them: ``install()``
      raises ``RuntimeError`` unless ``replace_stdlib=True`` says to replace
      them (``python -m sockloop`` does).
    * If another ``asyncore`` or ``asynchat`` was imported already, objects of
      both would be mixed in one program: ``RuntimeError``, whatever the
      version. Calling ``install()`` again is a no-op.

    Nothing is changed when it raises.
    """
    for name, module in _NAMES:
        current = sys.modules.get(name)
        if current is None or current is module:
            continue
        raise RuntimeError(
            "%s is already imported (from %s); call sockloop.install() before "
            "anything imports it" % (name, getattr(current, "__file__", "?")))
    if not replace_stdlib and sys.version_info < (3, 12):
        for name, module in _NAMES:
            if sys.modules.get(name) is not module and importlib.util.find_spec(name):
                raise RuntimeError(
                    "Python %d.%d has its own %s; pass replace_stdlib=True to run "
                    "the program on sockloop's instead (python -m sockloop does)"
                    % (sys.version_info[0], sys.version_info[1], name))
    for name, module in _NAMES:
        sys.modules[name] = module
