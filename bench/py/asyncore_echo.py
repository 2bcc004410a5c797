"""Peer echo server: CPython's own asyncore (3.11), written the way its docs do.

Usage: python3 -W ignore asyncore_echo.py [--addr 127.0.0.1:0] [--backend select|poll]

Prints `listening on <addr>` once bound. The handler is the canonical
`asyncore.dispatcher_with_send` echo handler from the asyncore docs, with a
64 KiB recv size (the docs use 8192) so it reads like the Rust servers do.
"""

import argparse
import asyncore
import resource
import socket


class EchoHandler(asyncore.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(65536)
        if data:
            self.send(data)


class EchoServer(asyncore.dispatcher):
    def __init__(self, host, port):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind((host, port))
        self.listen(1024)

    def handle_accepted(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        EchoHandler(sock)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:0")
    ap.add_argument("--backend", choices=["select", "poll"], default="select")
    args = ap.parse_args()
    host, _, port = args.addr.rpartition(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = EchoServer(host, int(port))
    bound = server.socket.getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    asyncore.loop(timeout=30.0, use_poll=(args.backend == "poll"))


if __name__ == "__main__":
    main()
