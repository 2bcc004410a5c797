#!/usr/bin/env python3
"""Storage-on-the-loop probe. Starts BINARY (smtp_sink) on 127.0.0.1:0
with a fresh Maildir under DIR; one session pipelines bursts of 1,500 messages (one write
of about 66 KB each, then reads the replies) for SECS seconds, while 3 other sessions time
NOOP round trips. usage: smtppipe.py BINARY DIR SECS"""
import os, shutil, socket, subprocess, sys, threading, time

binary, base, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
maildir = os.path.join(base, "smtppipe-maildir")
shutil.rmtree(maildir, ignore_errors=True)
srv = subprocess.Popen([binary, "--addr", "127.0.0.1:0", "--maildir", maildir],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
port = int(srv.stdout.readline().split()[-1].rsplit(b":", 1)[1])
def session():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb"); f.readline()
    s.sendall(b"EHLO probe\r\n")
    while f.readline()[3:4] != b" ":
        pass
    return s, f
def replies(f, n):
    codes = []
    while len(codes) < n:
        l = f.readline()
        if l[3:4] == b" ":
            codes.append(int(l[:3]))
    return codes
msg = b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: p\r\n\r\nx\r\n.\r\n"
burst = msg * 1500
end = time.monotonic() + secs
sent = [0]
def pipeliner():
    s, f = session()
    while time.monotonic() < end:
        s.sendall(burst)
        codes = replies(f, 4 * 1500)
        assert codes.count(250) == 3 * 1500 and codes.count(354) == 1500, codes[:8]
        sent[0] += 1500
rtts = []
def noops():
    s, f = session()
    time.sleep(0.2)
    while time.monotonic() < end:
        t = time.monotonic(); s.sendall(b"NOOP\r\n"); f.readline()
        rtts.append(time.monotonic() - t); time.sleep(0.005)
ts = [threading.Thread(target=pipeliner)] + [threading.Thread(target=noops) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
srv.terminate(); srv.wait()
stored = len(os.listdir(os.path.join(maildir, "new"))) if os.path.isdir(os.path.join(maildir, "new")) \
    else len([n for n in os.listdir(maildir) if n.endswith(".eml")])
rtts.sort()
q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] * 1000
print(f"{secs:.0f} s: one session pipelined {sent[0]} messages in bursts of 1,500 "
      f"({sent[0] / secs:.0f}/s; {stored} files stored)")
print(f"  3 other sessions' NOOP round trip: n={len(rtts)} p50={q(0.5):.2f} ms "
      f"p99={q(0.99):.2f} ms max={rtts[-1] * 1000:.1f} ms")
shutil.rmtree(maildir, ignore_errors=True)
