"""In-process user CPU per echoed message: the standard library's asyncore vs
sockloop.asyncore, 100 busy channels (no network, no load generator).

    python3 -W ignore pymsg.py [--conns 100] [--iters 3000] [--reps 5]

Each channel (the docs' echo handler, or the tuned one of pyasync_echo.py) is one end
of a socketpair; each iteration writes 64 B to every peer, runs loop(count=1) and
drains the echoes. Only the loop() call is timed: user and system CPU from
getrusage, medians of REPS runs, per message.
"""

import argparse
import resource
import socket
import statistics
import sys
import warnings

warnings.simplefilter("ignore")
import asyncore as stdlib_asyncore  # noqa: E402  (Python <= 3.11)

from sockloop import asyncore as sockloop_asyncore  # noqa: E402

from echo_handlers import classes  # noqa: E402


def run(mod, kw, handler, conns, iters):
    cls = classes(mod)[handler]
    m, peers = {}, []
    for _ in range(conns):
        a, b = socket.socketpair()
        peers.append(b)
        cls(a, map=m)
    msg = b"x" * 64
    user = system = 0.0
    for _ in range(iters):
        for p in peers:
            p.send(msg)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        mod.loop(timeout=1.0, map=m, count=1, **kw)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user += r1.ru_utime - r0.ru_utime
        system += r1.ru_stime - r0.ru_stime
        for p in peers:
            p.recv(65536)
    mod.close_all(m)
    for p in peers:
        p.close()
    n = conns * iters
    return user / n * 1e6, system / n * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--handlers", default="docs,tuned")
    args = ap.parse_args()
    cells = [("stdlib", "select", stdlib_asyncore, {"use_poll": False}),
             ("sockloop", "select", sockloop_asyncore, {"backend": "select"}),
             ("stdlib", "poll", stdlib_asyncore, {"use_poll": True}),
             ("sockloop", "poll", sockloop_asyncore, {"backend": "poll"}),
             ("sockloop", "epoll", sockloop_asyncore, {"backend": "epoll"})]
    res = {}
    for _ in range(args.reps):
        for handler in args.handlers.split(","):
            for impl, backend, mod, kw in cells:
                res.setdefault((handler, impl, backend), []).append(
                    run(mod, kw, handler, args.conns, args.iters))
    print("| handler | implementation | backend | user µs/msg | system µs/msg | user vs stdlib |")
    print("|---|---|---|---:|---:|---:|")
    for (handler, impl, backend), rs in res.items():
        u = statistics.median(r[0] for r in rs)
        s = statistics.median(r[1] for r in rs)
        base = res.get((handler, "stdlib", "poll" if backend == "epoll" else backend))
        ratio = ""
        if impl == "sockloop" and base:
            ratio = "%.2f×" % (u / statistics.median(r[0] for r in base))
        print("| %s | %s | %s | %.3f | %.3f | %s |" % (handler, impl, backend, u, s, ratio))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
