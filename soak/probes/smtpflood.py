#!/usr/bin/env python3
"""An SMTP client that sends LINE (escapes allowed, e.g. "\\r\\n") in 64 KiB bursts and never
reads; samples the server's RssAnon. usage: smtpflood.py PORT PID LINE"""
import socket, sys, time
port, pid, line = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode().decode('unicode_escape').encode('latin1')
def anon():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("RssAnon"): return int(l.split()[1])
base = anon()
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); c.connect(("127.0.0.1", port))
c.setblocking(False); sent = 0; t0 = time.time(); peak = base; burst = line * (65536 // len(line))
while time.time() - t0 < 5:
    try: sent += c.send(burst)
    except BlockingIOError: time.sleep(0.01)
    peak = max(peak, anon())
print(f"line {line!r}: client sent {sent} bytes without reading; server RssAnon {base} -> peak {peak} kB (+{peak-base} kB)")
c.close()
