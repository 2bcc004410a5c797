#!/usr/bin/env python3
"""Drives a line-echo server with pipelined lines: REPS writes of N short lines each, every
write sent in one go, every reply read before the next write. Prints nothing; the caller
counts the server's system calls (strace -c). usage: pipelined.py PORT N REPS"""
import socket, sys

port, n, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection(("127.0.0.1", port))
c.settimeout(30)
batch = b"".join(b"line %05d\n" % i for i in range(n))
for _ in range(reps):
    c.sendall(batch)
    got = 0
    while got < len(batch):
        data = c.recv(1 << 20)
        if not data:
            sys.exit("the server closed early")
        got += len(data)
c.close()
