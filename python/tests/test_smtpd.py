"""A real program on the package: CPython's own smtpd (3.11 and earlier), unmodified,
serving concurrent smtplib clients; every message must arrive byte for byte.

Run in its own process (it installs sockloop as `asyncore`/`asynchat`):
    python test_smtpd.py
"""

import random
import re
import smtplib
import sys
import threading
import unittest
import warnings

import sockloop

sockloop.install(replace_stdlib=True)
import asyncore  # noqa: E402  (sockloop's, after install)

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import smtpd
except ImportError:  # Python 3.12+: no smtpd in the standard library
    smtpd = None

BACKENDS = ("select", "poll", "epoll")
CLIENTS = int(__import__("os").environ.get("SMTPD_CLIENTS", 8))
MESSAGES = int(__import__("os").environ.get("SMTPD_MESSAGES", 25))


def make_message(rng, n):
    """CRLF-separated printable lines, some starting with '.', no trailing CRLF."""
    lines = []
    for i in range(rng.randrange(1, 60)):
        line = "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(0, 120)))
        if rng.random() < 0.1:
            line = "." + line
        lines.append(line)
    if n % 10 == 0:  # a few large ones, past smtpd's and the socket's buffers
        lines.append("x" * 200000)
    lines.append("end of message %d" % n)
    return "\r\n".join(lines).encode("ascii")


def as_delivered(msg):
    """What smtpd hands process_message() for `msg` (decode_data=False): smtplib
    dot-stuffs, smtpd splits at CRLF, un-stuffs and joins the lines with b"\\n"."""
    return msg.replace(b"\r\n", b"\n")


def describe(missing, extra):
    out = ["%d expected messages not received, %d received not expected" % (len(missing), len(extra))]
    for sender, rcpt, msg in sorted(missing)[:2]:
        out.append("expected %s %s %d bytes" % (sender, rcpt, len(msg)))
        for s2, r2, m2 in extra:
            if r2 == rcpt:
                at = next((i for i, (x, y) in enumerate(zip(msg, m2)) if x != y), min(len(msg), len(m2)))
                out.append("  got %d bytes; first difference at %d: %r vs %r" % (
                    len(m2), at, msg[at - 20:at + 20], m2[at - 20:at + 20]))
    return "\n".join(out)


@unittest.skipIf(smtpd is None, "no smtpd in this Python's standard library")
class SmtpdOnSockloop(unittest.TestCase):
    def test_concurrent_clients_byte_exact(self):
        self.assertIs(smtpd.asyncore, sockloop.asyncore)
        self.assertIs(smtpd.asynchat, sockloop.asynchat)
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                self.run_backend(backend)

    def run_backend(self, backend):
        received = []

        class Server(smtpd.SMTPServer):
            def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
                received.append((mailfrom, tuple(rcpttos), data))

        server = Server(("127.0.0.1", 0), None, decode_data=False)
        port = server.socket.getsockname()[1]
        stop = threading.Event()
        loop_errors = []

        def serve():
            try:
                while not stop.is_set():
                    asyncore.loop(timeout=0.05, count=20, backend=backend)
            except BaseException as e:  # reported by the test, not lost in the thread
                loop_errors.append(e)

        loop_thread = threading.Thread(target=serve)
        loop_thread.start()
        expected = []
        client_errors = []
        lock = threading.Lock()

        def client(c):
            rng = random.Random(c)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                    for n in range(MESSAGES):
                        sender = "client%d@example.com" % c
                        rcpt = ("rcpt%d-%d@example.com" % (c, n),)
                        msg = make_message(rng, n)
                        s.sendmail(sender, list(rcpt), msg)
                        with lock:
                            expected.append((sender, rcpt, as_delivered(msg)))
            except Exception as e:
                client_errors.append(e)

        clients = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        stop.set()
        loop_thread.join(30)
        asyncore.close_all()
        self.assertFalse(loop_thread.is_alive())
        self.assertEqual(loop_errors, [])
        self.assertEqual(client_errors, [])
        self.assertEqual(len(received), CLIENTS * MESSAGES)
        # Compared without assertEqual's diff, which is slow on 200 KB messages.
        missing = set(expected) - set(received)
        extra = set(received) - set(expected)
        self.assertTrue(not missing and not extra, describe(missing, extra))


if __name__ == "__main__":
    unittest.main()
