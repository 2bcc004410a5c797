"""Loop iteration cost with N idle channels: the standard library's asyncore vs
sockloop.asyncore, in-process (no network load), user+system CPU per iteration.

    python3 -W ignore pyiter.py [N ...]        (needs the sockloop package installed)

Each channel is a dispatcher_with_send (the docs' echo handler) on one end of a
socketpair with nothing to read; loop(timeout=0) is run ITER times per cell, and
the best of 3 runs is printed, per iteration and per channel.
"""

import os
import resource
import socket
import sys
import time
import warnings

warnings.simplefilter("ignore")
import asyncore as stdlib_asyncore  # noqa: E402  (Python <= 3.11)

from sockloop import asyncore as sockloop_asyncore  # noqa: E402


def build(mod, n):
    class Echo(mod.dispatcher_with_send):
        def handle_read(self):
            data = self.recv(8192)
            if data:
                self.send(data)

    m, peers = {}, []
    for _ in range(n):
        a, b = socket.socketpair()
        peers.append(b)
        Echo(a, map=m)
    return m, peers


def measure(mod, kwargs, n, iters):
    m, peers = build(mod, n)
    best = None
    for _ in range(3):
        t = time.process_time()
        mod.loop(timeout=0, map=m, count=iters, **kwargs)
        dt = (time.process_time() - t) / iters
        best = dt if best is None else min(best, dt)
    mod.close_all(m)
    for p in peers:
        p.close()
    return best


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 9000]
    cells = [("stdlib", "select", stdlib_asyncore, {"use_poll": False}),
             ("stdlib", "poll", stdlib_asyncore, {"use_poll": True}),
             ("sockloop", "select", sockloop_asyncore, {"backend": "select"}),
             ("sockloop", "poll", sockloop_asyncore, {"backend": "poll"}),
             ("sockloop", "epoll", sockloop_asyncore, {"backend": "epoll"})]
    print("| N idle | implementation | backend | µs per iteration | ns per channel |")
    print("|---:|---|---|---:|---:|")
    for n in sizes:
        iters = max(20, 200000 // n)
        for impl, backend, mod, kw in cells:
            if impl == "stdlib" and backend == "select" and 2 * n + 16 > 1024:
                print("| %d | %s | %s | – (select.select refuses descriptors ≥ 1024) | – |" % (n, impl, backend))
                continue
            dt = measure(mod, kw, n, iters)
            print("| %d | %s | %s | %.1f | %.0f |" % (n, impl, backend, dt * 1e6, dt * 1e9 / n))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
