#!/usr/bin/env python3
"""M idle members in the chat room; one more client sends one 64 KiB burst of "/who"
lines and never reads. Samples the server's RssAnon. usage: who.py PORT PID M"""
import socket, sys, time
port, pid, m = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def anon():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])
members = [socket.create_connection(("127.0.0.1", port)) for _ in range(m)]
time.sleep(1)
base = anon()
c = socket.create_connection(("127.0.0.1", port))
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
burst = b"/who\n" * (65536 // 5)
c.sendall(burst)
peak = base
for _ in range(20):
    time.sleep(0.25)
    peak = max(peak, anon())
print(f"{m} members; one client sent {len(burst)} bytes ({len(burst)//5} x /who) and reads nothing:")
print(f"  server RssAnon {base} kB -> peak {peak} kB (+{(peak-base)/1024:.1f} MiB)")
c.close()
for s in members: s.close()
