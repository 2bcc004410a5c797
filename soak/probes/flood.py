#!/usr/bin/env python3
"""Peers that send without reading; samples the server's memory from /proc.

usage:
  flood.py echo PORT PID NCONN SECS        send 64 KiB chunks, never read
  flood.py chatline PORT PID NCONN SECS    send one endless line (no newline)
  flood.py chatnear PORT PID NCONN         send max-line bytes, no newline, then hold
"""
import os
import selectors
import socket
import sys
import time

mode, port, pid, nconn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secs = float(sys.argv[5]) if len(sys.argv) > 5 else 0


def mem():
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "VmHWM"):
                d[k] = int(v.split()[0])
    return d


base = mem()
print("baseline", base, flush=True)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(nconn)]
for s in socks:
    s.setblocking(False)
chunk = b"a" * 65536
sent = [0] * nconn
closed = [False] * nconn
replies = [b""] * nconn
peak = dict(base)

if mode in ("echo", "chatline"):
    t0 = time.time()
    last = 0
    while time.time() - t0 < secs:
        progress = False
        for i, s in enumerate(socks):
            if closed[i]:
                continue
            try:
                n = s.send(chunk)
                sent[i] += n
                progress = True
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed[i] = True
            if mode == "chatline":
                # the chat server answers and closes: read only to notice it
                try:
                    r = s.recv(65536)
                    if r == b"":
                        closed[i] = True
                    replies[i] += r
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed[i] = True
        if time.time() - last > 0.25:
            m = mem()
            for k in peak:
                peak[k] = max(peak[k], m[k])
            last = time.time()
        if not progress:
            time.sleep(0.01)
        if all(closed):
            break
    m = mem()
    print(f"after {time.time()-t0:.1f}s: now {m}; peak sampled {peak}", flush=True)
    print(f"bytes sent per conn: min {min(sent)} max {max(sent)} total {sum(sent)}; closed by server: {sum(closed)}/{nconn}")
    print(f"server RssAnon growth: now {(m['RssAnon']-base['RssAnon'])} kB, peak {(peak['RssAnon']-base['RssAnon'])} kB; per conn peak {(peak['RssAnon']-base['RssAnon'])/nconn:.0f} kB")
    if mode == "chatline":
        kinds = {}
        for r in replies:
            tail = r.split(b"\n")[-2:] if r else [b""]
            key = b"|".join(x for x in r.split(b"\n") if not x.startswith(b"welcome"))
            kinds[key] = kinds.get(key, 0) + 1
        print("replies after welcome:", kinds)
elif mode == "chatnear":
    line = b"a" * int(sys.argv[5]) if len(sys.argv) > 5 else b"a" * 4096
    for s in socks:
        s.setblocking(True)
        s.sendall(line)
    time.sleep(2)
    m = mem()
    print(f"{nconn} conns each holding a {len(line)}-byte partial line: now {m}")
    print(f"per conn: RssAnon {(m['RssAnon']-base['RssAnon'])*1024/nconn:.0f} B")
for s in socks:
    s.close()
