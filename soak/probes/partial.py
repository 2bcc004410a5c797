#!/usr/bin/env python3
"""Memory per connection holding a partial line. Starts BINARY
(chat_server, defaults: --max-line 4096) on 127.0.0.1:0; N clients each send 4,096 bytes
with no newline, then 1 more byte (the longest partial line allowed, the \\r slot); the
server's RssAnon growth divided by N. usage: partial.py BINARY N"""
import resource, socket, subprocess, sys, time

binary, n = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
srv = subprocess.Popen([binary, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
port = int(srv.stdout.readline().split()[-1].rsplit(b":", 1)[1])
def anon():
    for line in open(f"/proc/{srv.pid}/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])
time.sleep(0.5)
base = anon()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(1.5)
idle = anon()
for s in socks:
    s.sendall(b"p" * 4096)
time.sleep(1.5)
at_limit = anon()
for s in socks:
    s.sendall(b"q")
time.sleep(1.5)
plus_one = anon()
print(f"{n} connections: RssAnon {base} kB base, {idle} kB idle, {at_limit} kB after 4,096 "
      f"bytes each, {plus_one} kB after 1 more")
for label, v in (("idle", idle), ("4,096 bytes", at_limit), ("4,097 bytes", plus_one)):
    print(f"  per connection, {label}: {(v - base) * 1024 / n / 1000:.1f} kB")
srv.terminate(); srv.wait()
