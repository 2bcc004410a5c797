#!/usr/bin/env python3
"""/who amplification probe. Starts BINARY (chat_server) on
127.0.0.1:0 with M idle members; 4 clients send "/who" as fast as they can for SECS
seconds and read every reply; a probe client times `/nick` round trips meanwhile.
usage: whospam.py BINARY M SECS"""
import resource, socket, subprocess, sys, threading, time

binary, m, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
srv = subprocess.Popen([binary, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
port = int(srv.stdout.readline().split()[-1].rsplit(b":", 1)[1])
members = [socket.create_connection(("127.0.0.1", port)) for _ in range(m)]
time.sleep(0.5)
end = time.monotonic() + secs
got = [0] * 4
def spam(i):
    s = socket.create_connection(("127.0.0.1", port))
    def reader():
        while time.monotonic() < end:
            try:
                d = s.recv(1 << 20)
            except OSError:
                return
            if not d: return
            got[i] += len(d)
    threading.Thread(target=reader, daemon=True).start()
    burst = b"/who\n" * 1000
    try:
        while time.monotonic() < end:
            s.sendall(burst)
    except OSError:
        pass  # the server stopped
rtts = []
def probe():
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb"); f.readline()
    n = 0
    while time.monotonic() < end:
        n += 1; t = time.monotonic(); s.sendall(b"/nick probe%d\n" % n)
        while f.readline() != b"ok\n":
            pass
        rtts.append(time.monotonic() - t); time.sleep(0.01)
ts = [threading.Thread(target=spam, args=(i,), daemon=True) for i in range(4)]
ts.append(threading.Thread(target=probe, daemon=True))
for t in ts: t.start()
ts[-1].join()
time.sleep(0.2)
rtts.sort()
print(f"{m} members; 4 clients spam /who for {secs:.0f} s and read the replies:")
print(f"  replies received: {sum(got) / 1e6:.1f} MB in all")
print(f"  another client's /nick round trip: n={len(rtts)} p50={rtts[len(rtts)//2]*1000:.1f} ms "
      f"max={rtts[-1]*1000:.1f} ms")
srv.terminate(); srv.wait()
