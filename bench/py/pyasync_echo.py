"""Echo server on asyncore: the standard library's or sockloop's, side by side.

Usage: python3 -W ignore pyasync_echo.py --impl stdlib|sockloop
           [--backend select|poll|epoll] [--handler docs|tuned] [--addr 127.0.0.1:0]

Prints `listening on <addr>` once bound. The program is the same for both
implementations; only `import asyncore` differs (sockloop.install()).

* docs: the echo handler of the asyncore documentation (dispatcher_with_send,
  recv(8192), send(data)), with TCP_NODELAY.
* tuned: what a performance-minded asyncore programmer writes: writable() only
  while output is pending, the socket's recv/send called directly with 64 KiB
  reads, no per-message string concatenation when the send completes.
"""

import argparse
import os
import resource
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--impl", choices=["stdlib", "sockloop"], required=True)
ap.add_argument("--backend", choices=["select", "poll", "epoll"], default="select")
ap.add_argument("--handler", choices=["docs", "tuned"], default="docs")
ap.add_argument("--addr", default="127.0.0.1:0")
args = ap.parse_args()

if args.impl == "sockloop":
    import sockloop
    sockloop.install(replace_stdlib=True)
elif args.backend == "epoll":
    sys.exit("the standard library's asyncore has no epoll backend")
import asyncore  # noqa: E402


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echo_handlers import classes  # noqa: E402  (the same handlers pymsg/pycount measure)

HANDLERS = classes(asyncore)


class Server(asyncore.dispatcher):
    def __init__(self, host, port, handler):
        super().__init__()
        self.handler = handler
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind((host, port))
        self.listen(1024)

    def handle_accepted(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.handler(sock)


def main():
    host, _, port = args.addr.rpartition(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = Server(host, int(port), HANDLERS[args.handler])
    bound = server.socket.getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    if args.impl == "sockloop":
        asyncore.loop(timeout=30.0, backend=args.backend)
    else:
        asyncore.loop(timeout=30.0, use_poll=(args.backend == "poll"))


if __name__ == "__main__":
    main()
