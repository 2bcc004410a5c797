#!/usr/bin/env python3
"""Fan-out stall probe. Starts BINARY (chat_server) on 127.0.0.1:0 with
M members that read everything; one talker writes LINES lines of LEN bytes in ONE write;
meanwhile a probe member sends `/nick` every 20 ms and times each `ok` (it is a member, so
its reply queues behind the lines already sent to it). Then a second burst, and SIGTERM in
the middle of it: time to exit. usage: fanout.py BINARY M LINES LEN"""
import os, resource, selectors, signal, socket, subprocess, sys, threading, time

binary, m, lines, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
srv = subprocess.Popen([binary, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
port = int(srv.stdout.readline().split()[-1].rsplit(b":", 1)[1])
talker = socket.create_connection(("127.0.0.1", port)); talker.recv(4096)
members = [socket.create_connection(("127.0.0.1", port)) for _ in range(m)]
got = [0] * m
stop = False
def drain():
    sel = selectors.DefaultSelector()
    for i, s in enumerate(members):
        s.setblocking(False); sel.register(s, selectors.EVENT_READ, i)
    while not stop:
        for key, _ in sel.select(0.1):
            try:
                data = key.fileobj.recv(1 << 20)
            except (BlockingIOError, ConnectionResetError):
                continue
            got[key.data] += data.count(b"\n")
threading.Thread(target=drain, daemon=True).start()
probe = socket.create_connection(("127.0.0.1", port)); probe.recv(4096)
pf = probe.makefile("rb")
line = ("y" * (length - 1) + "\n").encode()
burst = line * lines
def flood():
    talker.sendall(burst)
def timed_nicks(until):
    rtts, n = [], 0
    while not until():
        n += 1
        t = time.monotonic(); probe.sendall(b"/nick p%d\n" % n)
        while pf.readline() != b"ok\n":
            pass
        rtts.append(time.monotonic() - t); time.sleep(0.02)
    return rtts
time.sleep(1)
base = list(got)
t0 = time.monotonic()
threading.Thread(target=flood, daemon=True).start()
# each member gets `lines` lines plus the probe's rename announcements
done = lambda: min(g - b for g, b in zip(got, base)) >= lines
rtts = timed_nicks(done)
while not done():
    time.sleep(0.01)
took = time.monotonic() - t0
rtts.sort()
print(f"{m} members, one write of {lines} x {length}-byte lines ({len(burst)} bytes):")
print(f"  every member had every line after {took:.2f} s "
      f"({m * lines / took / 1e6:.2f} M line deliveries/s)")
if rtts:
    print(f"  another client's /nick round trip during it: n={len(rtts)} "
          f"p50={rtts[len(rtts)//2]*1000:.1f} ms max={rtts[-1]*1000:.1f} ms")
threading.Thread(target=flood, daemon=True).start()
time.sleep(0.05)
t = time.monotonic(); srv.send_signal(signal.SIGTERM); code = srv.wait()
print(f"  SIGTERM 50 ms into a second burst: exit status {code} after "
      f"{(time.monotonic() - t) * 1000:.0f} ms")
stop = True
