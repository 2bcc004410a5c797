"""Peer echo server: asyncio Protocol (default event loop, epoll selector).

Usage: python3 asyncio_echo.py [--addr 127.0.0.1:0]

Prints `listening on <addr>` once bound. data_received -> transport.write.
"""

import argparse
import asyncio
import resource
import socket


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asyncio already sets TCP_NODELAY; be explicit
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def serve(host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:0")
    args = ap.parse_args()
    host, _, port = args.addr.rpartition(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(host, int(port)))


if __name__ == "__main__":
    main()
