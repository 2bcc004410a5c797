"""User-space instructions per echoed message in the server, counted by callgrind:
the standard library's asyncore vs sockloop.asyncore, 100 busy channels.

    python3 pycount.py [--python VENV_PYTHON] [--conns 100] [--rounds 100,300]

Deterministic where CPU-time sampling on a shared machine is not: the server
(`pycount.py --serve ...`) runs under `valgrind --tool=callgrind`; its peers, in a
separate, untraced process, write 64 B to every channel, read every echo, and repeat.
A last row per handler counts only the instructions inside sockloop's event routing
(the handlers and everything they call): the part no loop implementation can remove.
Each cell runs twice (two round counts); the difference in instructions divided by the
difference in messages is the per-message cost, start-up excluded. Kernel work (the
system calls themselves) is not counted: this is the user-space part only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.abspath(__file__)
# Counted alone for the "handlers only" row: sockloop's routing of a select read event,
# i.e. the channel's handle_read_event() and everything it calls.
FLOOR = "_sockloop::route::Ctx::read"


def serve(impl, backend, handler, conns, rounds):
    import socket
    import warnings
    warnings.simplefilter("ignore")
    if impl == "sockloop":
        import sockloop
        sockloop.install(replace_stdlib=True)
    import asyncore
    sys.path.insert(0, os.path.dirname(HERE))
    from echo_handlers import classes
    cls = classes(asyncore)[handler]
    m, peers = {}, []
    for _ in range(conns):
        a, b = socket.socketpair()
        peers.append(b)
        cls(a, map=m)
    p = subprocess.Popen([sys.executable, HERE, "--peer", str(rounds)] +
                         [str(s.fileno()) for s in peers], pass_fds=[s.fileno() for s in peers])
    for s in peers:
        s.close()
    kw = {"use_poll": backend == "poll"} if impl == "stdlib" else {"backend": backend}
    asyncore.loop(timeout=5.0, map=m, **kw)
    p.wait()


def peer(rounds, fds):
    import socket
    socks = [socket.socket(fileno=int(f)) for f in fds]
    msg = b"x" * 64
    for _ in range(rounds):
        for s in socks:
            s.send(msg)
        for s in socks:
            got = 0
            while got < 64:
                got += len(s.recv(4096))
    for s in socks:
        s.close()


def count(python, impl, backend, handler, conns, rounds, only=None):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        toggle = ["--toggle-collect=" + only] if only else []
        r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                            *toggle, python, "-W", "ignore", HERE, "--serve", impl, backend, handler,
                            str(conns), str(rounds)], capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if not m:
            sys.exit("callgrind failed: " + r.stderr[-800:])
        return int(m.group(1))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        impl, backend, handler, conns, rounds = sys.argv[2:7]
        return serve(impl, backend, handler, int(conns), int(rounds))
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        return peer(int(sys.argv[2]), sys.argv[3:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--rounds", default="100,300")
    ap.add_argument("--handlers", default="docs,tuned")
    ap.add_argument("--cells", default="stdlib:select,sockloop:select,stdlib:poll,sockloop:poll,sockloop:epoll")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    r1, r2 = (int(x) for x in args.rounds.split(","))
    res = {}
    print("| handler | implementation | backend | user-space instructions/msg | vs stdlib (same backend) |")
    print("|---|---|---|---:|---:|")
    for handler in args.handlers.split(","):
        for cell in args.cells.split(","):
            impl, backend = cell.split(":")
            a = count(args.python, impl, backend, handler, args.conns, r1)
            b = count(args.python, impl, backend, handler, args.conns, r2)
            per = (b - a) / ((r2 - r1) * args.conns)
            res[(handler, impl, backend)] = per
            base = res.get((handler, "stdlib", "poll" if backend == "epoll" else backend))
            ratio = "%.2f×" % (per / base) if impl == "sockloop" and base else ""
            print("| %s | %s | %s | %.0f | %s |" % (handler, impl, backend, per, ratio), flush=True)
        # The floor: what the event handlers themselves cost (handle_read_event and all it
        # calls, the program's Python code), counted inside sockloop's routing only.
        a = count(args.python, "sockloop", "select", handler, args.conns, r1, FLOOR)
        b = count(args.python, "sockloop", "select", handler, args.conns, r2, FLOOR)
        per = (b - a) / ((r2 - r1) * args.conns)
        res[(handler, "handlers only", "select")] = per
        print("| %s | handlers only | (select) | %.0f | |" % (handler, per), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"handler": h, "impl": i, "backend": b, "instructions_per_msg": v}
                       for (h, i, b), v in res.items()], f)


if __name__ == "__main__":
    main()
