"""Tests of the Rust-specific paths of sockloop.asyncore: the backend keyword and
epoll's cached registrations, threads, signals, errors raised inside handlers,
stale events after descriptor reuse, handle_close at most once, install().

Loopback only; every loop is bounded in time. Run: python -m unittest test_sockloop
"""

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from sockloop import asynchat, asyncore

BACKENDS = ("select", "poll", "epoll")


def loop_until(pred, backend, map, deadline=5.0, **kwargs):
    """Step the loop until pred() holds; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached within %.1f s" % deadline)
        asyncore.loop(timeout=0.01, map=map, count=1, backend=backend, **kwargs)


class Echo(asyncore.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(8192)
        if data:
            self.send(data)


class Server(asyncore.dispatcher):
    def __init__(self, map):
        asyncore.dispatcher.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(128)
        self.port = self.socket.getsockname()[1]

    def handle_accepted(self, sock, addr):
        Echo(sock, map=self._map)


class Client(asyncore.dispatcher_with_send):
    def __init__(self, port, map, payload):
        asyncore.dispatcher_with_send.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.connect(("127.0.0.1", port))
        self.received = b""
        self.send(payload)

    def handle_connect(self):
        pass

    def handle_read(self):
        self.received += self.recv(8192)


class Pair(asyncore.dispatcher):
    """One end of a socketpair as a channel that records what happens to it."""

    def __init__(self, sock, map, log, name):
        asyncore.dispatcher.__init__(self, sock, map=map)
        self.log, self.name = log, name
        self.closes = 0

    def writable(self):
        return False

    def handle_read(self):
        self.log.append((self.name, "read"))
        self.recv(100)

    def handle_close(self):
        self.closes += 1
        self.log.append((self.name, "close"))
        self.close()


class BackendKeyword(unittest.TestCase):
    def test_echo_on_every_backend(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                server = Server(m)
                clients = [Client(server.port, m, b"hello %d" % i) for i in range(5)]
                loop_until(lambda: all(c.received == b"hello %d" % i
                                       for i, c in enumerate(clients)), backend, m)
                asyncore.close_all(m)
                self.assertEqual(m, {})

    def test_bad_backend_is_refused(self):
        with self.assertRaises(ValueError):
            asyncore.loop(timeout=0, map={}, count=1, backend="kqueue")
        with self.assertRaises(ValueError):
            asyncore.loop(timeout=0, map={}, count=1, use_poll=True, backend="select")

    def test_empty_map_returns_at_once(self):
        for backend in BACKENDS:
            start = time.monotonic()
            asyncore.loop(timeout=5, map={}, backend=backend)
            self.assertLess(time.monotonic() - start, 1.0)

    def test_any_mapping_and_fileno_keys(self):
        class Mapping:
            def __init__(self):
                self.d = {}

            def __bool__(self):
                return bool(self.d)

            def __len__(self):
                return len(self.d)

            def __setitem__(self, k, v):
                self.d[k] = v

            def __delitem__(self, k):
                del self.d[k]

            def __contains__(self, k):
                return k in self.d

            def items(self):
                return self.d.items()

            def get(self, k):
                return self.d.get(k)

            def values(self):
                return self.d.values()

            def clear(self):
                self.d.clear()

        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = Mapping()
                server = Server(m)
                c = Client(server.port, m, b"x")
                loop_until(lambda: c.received == b"x", backend, m)
                asyncore.close_all(m)

    def test_negative_key_is_a_value_error(self):
        class Obj:
            accepting = False

            def readable(self):
                return True

            def writable(self):
                return False

        for backend in BACKENDS:
            with self.subTest(backend=backend):
                with self.assertRaises(ValueError):
                    asyncore.loop(timeout=0, map={-3: Obj()}, count=1, backend=backend)


class BadInput(unittest.TestCase):
    """Wrong arguments are Python exceptions, never a crash or a hang."""

    def one_channel(self):
        m = {}
        a, b = socket.socketpair()
        self.addCleanup(b.close)
        Pair(a, m, [], "A")
        self.addCleanup(asyncore.close_all, m)
        return m

    def test_timeouts(self):
        m = self.one_channel()
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                with self.assertRaises(ValueError):
                    asyncore.loop(timeout=float("nan"), map=m, count=1, backend=backend)
                with self.assertRaises(TypeError):
                    asyncore.loop(timeout="soon", map=m, count=1, backend=backend)
        with self.assertRaises(ValueError):  # select.select refuses it too
            asyncore.loop(timeout=-1, map=m, count=1, backend="select")

    def test_count_zero_runs_nothing(self):
        asked = []

        class Obj:
            accepting = False

            def readable(self):
                asked.append(1)
                return True

            def writable(self):
                return False

        for backend in BACKENDS:
            asyncore.loop(timeout=0, map={0: Obj()}, count=0, backend=backend)
        self.assertEqual(asked, [])

    def test_not_a_mapping(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                with self.assertRaises((TypeError, AttributeError)):
                    asyncore.loop(timeout=0, map=[1, 2], count=1, backend=backend)

    def test_objects_without_the_methods(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                with self.assertRaises(AttributeError):
                    asyncore.loop(timeout=0, map={0: object()}, count=1, backend=backend)
        # read()/readwrite() on such an object: CPython's bare except sends the
        # AttributeError to handle_error, which it lacks too: AttributeError again.
        with self.assertRaises(AttributeError):
            asyncore.read(object())
        with self.assertRaises(AttributeError):
            asyncore.readwrite(object(), select_flags().POLLIN)


def select_flags():
    import select
    return select


class EpollCache(unittest.TestCase):
    def test_idle_channels_are_not_asked_every_iteration(self):
        asked = []

        class Idle(asyncore.dispatcher):
            def readable(self):
                asked.append(self)
                return True

            def writable(self):
                return False

        m = {}
        pairs = [socket.socketpair() for _ in range(50)]
        for a, b in pairs:
            Idle(a, map=m)
        asyncore.loop(timeout=0.001, map=m, count=100, backend="epoll")
        # One full scan at the start (and at most one more a second later).
        self.assertLessEqual(len(asked), 100)
        asked.clear()
        # The state is kept between loop() calls: a program's own `while: loop(count=1)`.
        for _ in range(100):
            asyncore.loop(timeout=0.001, map=m, count=1, backend="epoll")
        self.assertLessEqual(len(asked), 100)
        asked.clear()
        asyncore.loop(timeout=0.001, map=m, count=100, backend="poll")
        self.assertEqual(len(asked), 50 * 100)
        asyncore.close_all(m)
        for a, b in pairs:
            b.close()

    def test_busy_channel_is_asked_once_per_iteration(self):
        # Its handler ran and its send() touched it: asked once, as select and poll do.
        asked = []

        class Counting(Echo):
            def readable(self):
                asked.append(self)
                return True

        m = {}
        a, b = socket.socketpair()
        Counting(a, map=m)
        asyncore.loop(timeout=0.001, map=m, count=1, backend="epoll")
        asked.clear()
        for _ in range(20):
            b.send(b"ping")
            asyncore.loop(timeout=1.0, map=m, count=1, backend="epoll")
            self.assertEqual(b.recv(100), b"ping")
            asyncore.loop(timeout=0.001, map=m, count=1, backend="epoll")
        # 20 (twice that if asked again for the touch), plus the once-a-second full scans.
        self.assertLessEqual(len(asked), 20 + 3)
        self.assertGreaterEqual(len(asked), 20)
        asyncore.close_all(m)
        b.close()

    def test_send_from_another_channels_handler_is_seen(self):
        # A reads a line and sends it through B, whose handlers did not run.
        m = {}
        a1, a2 = socket.socketpair()
        b1, b2 = socket.socketpair()

        class Quiet(asyncore.dispatcher_with_send):
            def readable(self):
                return False

        b = Quiet(b1, map=m)
        b.out_buffer = b""

        class Relay(asyncore.dispatcher):
            def writable(self):
                return False

            def handle_read(self):
                data = self.recv(100)
                if data:
                    # Fill B's buffer past what one send takes, so B needs write events.
                    b.send(data * 200000)

        Relay(a1, map=m)
        a2.sendall(b"ab")
        b2.setblocking(False)
        got = bytearray()

        def drained():
            try:
                while True:
                    chunk = b2.recv(1 << 20)
                    if not chunk:
                        break
                    got.extend(chunk)
            except BlockingIOError:
                pass
            return len(got) == 400000

        loop_until(drained, "epoll", m)
        self.assertEqual(bytes(got), b"ab" * 200000)
        asyncore.close_all(m)
        a2.close()
        b2.close()

    def test_update_interest(self):
        m = {}
        a1, a2 = socket.socketpair()

        class Gated(asyncore.dispatcher):
            open = False
            got = b""

            def readable(self):
                return self.open

            def writable(self):
                return False

            def handle_read(self):
                self.got += self.recv(10)

        g = Gated(a1, map=m)
        a2.sendall(b"z")
        asyncore.loop(timeout=0.001, map=m, count=5, backend="epoll")
        self.assertEqual(g.got, b"")
        done = []

        def opener():
            g.open = True
            asyncore.update_interest(g)
            done.append(1)

        t = threading.Timer(0.05, opener)
        t.start()
        loop_until(lambda: g.got == b"z", "epoll", m, deadline=3.0)
        t.join()
        asyncore.close_all(m)
        a2.close()


class EpollState(unittest.TestCase):
    def test_nested_loop_on_the_same_map(self):
        m = {}
        server = Server(m)
        inner = []

        class Nester(asyncore.dispatcher):
            def readable(self):
                return False

            def writable(self):
                return not inner

            def handle_write(self):
                inner.append(1)
                asyncore.loop(timeout=0.01, map=m, count=3, backend="epoll")

        Nester(socket.socket(), map=m)
        c = Client(server.port, m, b"nested")
        loop_until(lambda: c.received == b"nested" and inner, "epoll", m)
        asyncore.close_all(m)
        self.assertNotIn(id(m), asyncore._epoll_watch)

    def test_state_dropped_when_the_map_empties_or_another_backend_runs(self):
        m = {}
        a, b = socket.socketpair()
        Pair(a, m, [], "A")
        asyncore.loop(timeout=0.01, map=m, count=2, backend="epoll")
        self.assertIn(id(m), asyncore._epoll_watch)
        asyncore.loop(timeout=0.01, map=m, count=1, backend="poll")
        self.assertNotIn(id(m), asyncore._epoll_watch)
        asyncore.loop(timeout=0.01, map=m, count=1, backend="epoll")
        b.close()
        loop_until(lambda: not m, "epoll", m)
        asyncore.loop(timeout=0.01, map=m, count=1, backend="epoll")
        self.assertNotIn(id(m), asyncore._epoll_watch)

    def test_map_changed_between_loop_calls(self):
        m = {}
        server = Server(m)
        asyncore.loop(timeout=0.01, map=m, count=2, backend="epoll")
        c = Client(server.port, m, b"later")  # added between two loop() calls
        loop_until(lambda: c.received == b"later", "epoll", m)
        c.close()
        c2 = Client(server.port, m, b"again")  # may reuse c's descriptor number
        loop_until(lambda: c2.received == b"again", "epoll", m)
        asyncore.close_all(m)


class Threads(unittest.TestCase):
    def test_gil_is_released_while_waiting(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                a, b = socket.socketpair()

                class Idle(asyncore.dispatcher):
                    def writable(self):
                        return False

                Idle(a, map=m)
                counter = [0]
                stop = threading.Event()

                def spin():
                    while not stop.is_set():
                        counter[0] += 1

                t = threading.Thread(target=spin)
                t.start()
                try:
                    time.sleep(0.01)
                    start = counter[0]
                    asyncore.loop(timeout=0.3, map=m, count=1, backend=backend)
                    advanced = counter[0] - start
                finally:
                    stop.set()
                    t.join()
                asyncore.close_all(m)
                b.close()
                self.assertGreater(advanced, 10000)

    def test_loop_in_a_thread(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                server = Server(m)
                t = threading.Thread(
                    target=lambda: asyncore.loop(timeout=0.01, map=m, count=500,
                                                 backend=backend))
                t.start()
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                    s.sendall(b"ping")
                    got = b""
                    while len(got) < 4:
                        got += s.recv(10)
                self.assertEqual(got, b"ping")
                server.close()
                t.join(10)
                self.assertFalse(t.is_alive())
                asyncore.close_all(m)


class Alarm(Exception):
    pass


@unittest.skipUnless(hasattr(signal, "setitimer"), "needs setitimer")
class Signals(unittest.TestCase):
    def idle_map(self):
        m = {}
        a, b = socket.socketpair()
        self.addCleanup(b.close)

        class Idle(asyncore.dispatcher):
            def writable(self):
                return False

        Idle(a, map=m)
        self.addCleanup(asyncore.close_all, m)
        return m

    def test_handler_exception_ends_the_loop_promptly(self):
        def handler(signum, frame):
            raise Alarm()

        old = signal.signal(signal.SIGALRM, handler)
        try:
            for backend in BACKENDS:
                with self.subTest(backend=backend):
                    m = self.idle_map()
                    signal.setitimer(signal.ITIMER_REAL, 0.05)
                    start = time.monotonic()
                    with self.assertRaises(Alarm):
                        asyncore.loop(timeout=10, map=m, backend=backend)
                    self.assertLess(time.monotonic() - start, 2.0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def test_handler_runs_and_the_loop_goes_on(self):
        seen = []
        old = signal.signal(signal.SIGALRM, lambda s, f: seen.append(s))
        try:
            m = self.idle_map()
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            start = time.monotonic()
            asyncore.loop(timeout=0.3, map=m, count=1, backend="epoll")
            self.assertEqual(seen, [signal.SIGALRM])
            self.assertGreaterEqual(time.monotonic() - start, 0.29)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def test_keyboard_interrupt_propagates(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = self.idle_map()
                t = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
                t.start()
                with self.assertRaises(KeyboardInterrupt):
                    asyncore.loop(timeout=10, map=m, backend=backend)
                t.join()


class HandlerErrors(unittest.TestCase):
    def channel(self, handle_read, record):
        m = {}
        a, b = socket.socketpair()
        self.addCleanup(b.close)

        class Ch(asyncore.dispatcher):
            def writable(self):
                return False

            def handle_read(self):
                handle_read(self)

            def handle_error(self):
                record.append(("error", asyncore.compact_traceback()[1], sys.exc_info()[1]))
                self.handle_close()

            def handle_close(self):
                record.append(("close",))
                self.close()

        ch = Ch(a, map=m)
        b.sendall(b"x")
        return m, ch

    def test_exception_goes_to_handle_error_with_traceback(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                record = []

                def boom(self):
                    raise ValueError("boom")

                m, ch = self.channel(boom, record)
                asyncore.loop(timeout=1, map=m, count=5, backend=backend)
                self.assertEqual(record[0][0], "error")
                self.assertIs(record[0][1], ValueError)
                self.assertEqual(str(record[0][2]), "boom")
                self.assertEqual(record[1:], [("close",)])
                self.assertEqual(m, {})

    def test_disconnect_errors_go_to_handle_close_with_poll_and_epoll(self):
        for backend in ("poll", "epoll"):
            with self.subTest(backend=backend):
                record = []

                def reset(self):
                    raise OSError(errno.ECONNRESET, "reset")

                m, ch = self.channel(reset, record)
                asyncore.loop(timeout=1, map=m, count=5, backend=backend)
                self.assertEqual(record, [("close",)])

    def test_reraised_exceptions_propagate(self):
        for exc in (asyncore.ExitNow, KeyboardInterrupt, SystemExit):
            for backend in BACKENDS:
                with self.subTest(exc=exc, backend=backend):
                    record = []

                    def stop(self):
                        raise exc()

                    m, ch = self.channel(stop, record)
                    with self.assertRaises(exc):
                        asyncore.loop(timeout=1, map=m, count=5, backend=backend)
                    self.assertEqual(record, [])
                    asyncore.close_all(m)

    def test_exception_in_handle_error_propagates(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                a, b = socket.socketpair()
                self.addCleanup(b.close)

                class Ch(asyncore.dispatcher):
                    def writable(self):
                        return False

                    def handle_read(self):
                        raise ValueError("first")

                    def handle_error(self):
                        raise RuntimeError("second")

                Ch(a, map=m)
                b.sendall(b"x")
                with self.assertRaises(RuntimeError):
                    asyncore.loop(timeout=1, map=m, count=5, backend=backend)
                asyncore.close_all(m)

    def test_exception_in_readable_propagates(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                a, b = socket.socketpair()
                self.addCleanup(b.close)

                class Ch(asyncore.dispatcher):
                    def readable(self):
                        raise LookupError("predicate")

                Ch(a, map=m)
                with self.assertRaises(LookupError):
                    asyncore.loop(timeout=1, map=m, count=1, backend=backend)
                asyncore.close_all(m)


class Fixes(unittest.TestCase):
    def test_no_stale_event_after_fd_reuse(self):
        # A's handler closes B and puts a new channel C on B's descriptor number; B's
        # pending read event of this iteration must not be delivered to C (bpo-30931).
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m, log = {}, []
                a1, a2 = socket.socketpair()
                b1, b2 = socket.socketpair()
                others = [a2, b2]

                class Killer(Pair):
                    def handle_read(self):
                        Pair.handle_read(self)
                        if victim.socket is None or victim.closes:
                            return
                        fd = victim._fileno
                        victim.close()
                        s1, s2 = socket.socketpair()
                        if s1.fileno() != fd:
                            os.dup2(s1.fileno(), fd)
                            s1.close()
                            s1 = socket.socket(fileno=fd)
                        s2.sendall(b"c")
                        others.append(s2)
                        Pair(s1, m, log, "C")

                Killer(a1, m, log, "A")
                victim = Pair(b1, m, log, "B")
                b2.sendall(b"b")
                a2.sendall(b"a")
                asyncore.loop(timeout=1, map=m, count=1, backend=backend)
                names = [n for n, _ in log]
                if names[:1] == ["A"]:  # epoll may report B first: then nothing to see
                    self.assertEqual(names, ["A"], log)
                asyncore.loop(timeout=1, map=m, count=1, backend=backend)
                self.assertIn(("C", "read"), log)
                asyncore.close_all(m)
                for s in others:
                    s.close()

    def test_handle_close_once_on_eof_and_hangup(self):
        for backend in ("poll", "epoll"):
            with self.subTest(backend=backend):
                m, log = {}, []
                a, b = socket.socketpair()
                ch = Pair(a, m, log, "A")
                b.close()  # POLLIN (EOF) and POLLHUP together
                asyncore.loop(timeout=1, map=m, count=3, backend=backend)
                self.assertEqual(ch.closes, 1, log)
                self.assertEqual(m, {})


class OptInFixes(unittest.TestCase):
    """loop(..., fixes=True): off by default, because CPython programs can see them."""

    def reset_channel(self, record):
        m = {}
        a, b = socket.socketpair()
        self.addCleanup(b.close)

        class Ch(asyncore.dispatcher):
            def writable(self):
                return False

            def handle_read(self):
                raise OSError(errno.ECONNRESET, "reset")

            def handle_error(self):
                record.append("error")
                self.close()

            def handle_close(self):
                record.append("close")
                self.close()

        Ch(a, map=m)
        b.sendall(b"x")
        return m

    def test_disconnect_routing_under_select(self):
        record = []
        asyncore.loop(timeout=1, map=self.reset_channel(record), count=3, backend="select")
        self.assertEqual(record, ["error"])  # CPython's select routing
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                record = []
                asyncore.loop(timeout=1, map=self.reset_channel(record), count=3,
                              backend=backend, fixes=True)
                self.assertEqual(record, ["close"])

    def test_hangup_with_unread_input(self):
        payload = bytes(range(256)) * 400  # 100 KiB, read 1000 bytes per event

        def run(backend, fixes):
            m = {}
            a, b = socket.socketpair()
            b.sendall(payload)
            b.close()
            got = bytearray()

            class Slow(asyncore.dispatcher):
                def writable(self):
                    return False

                def handle_read(self):
                    got.extend(self.recv(1000))

                def handle_close(self):
                    self.close()

            Slow(a, map=m)
            end = time.monotonic() + 5
            while m and time.monotonic() < end:
                asyncore.loop(timeout=0.01, map=m, count=1, backend=backend, fixes=fixes)
            self.assertEqual(m, {})
            return bytes(got)

        for backend in ("poll", "epoll"):
            with self.subTest(backend=backend):
                self.assertLess(len(run(backend, False)), len(payload))  # CPython drops it
                self.assertEqual(run(backend, True), payload)

    def test_predicate_errors_stay_in_their_channel(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m, errors = {}, []
                a, b = socket.socketpair()
                self.addCleanup(b.close)

                class Bad(asyncore.dispatcher):
                    def readable(self):
                        raise LookupError("predicate")

                    def handle_error(self):
                        errors.append(sys.exc_info()[0])
                        self.close()

                Bad(a, map=m)
                server = Server(m)
                c = Client(server.port, m, b"still served")
                loop_until(lambda: c.received == b"still served", backend, m, fixes=True)
                self.assertEqual(errors, [LookupError])
                asyncore.close_all(m)


class FileDispatcher(unittest.TestCase):
    def test_pipe(self):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                m = {}
                r, w = os.pipe()
                got = []

                class Reader(asyncore.file_dispatcher):
                    def writable(self):
                        return False

                    def handle_read(self):
                        got.append(self.recv(100))

                    def handle_close(self):
                        self.close()

                Reader(r, map=m)
                os.close(r)
                os.write(w, b"through a pipe")
                loop_until(lambda: b"".join(got) == b"through a pipe", backend, m)
                os.close(w)
                loop_until(lambda: not m, backend, m)


class Chat(unittest.TestCase):
    def test_terminator_defaults_to_none(self):
        self.assertIsNone(asynchat.async_chat().get_terminator())

    def test_empty_push_is_skipped(self):
        a, b = socket.socketpair()
        c = asynchat.async_chat(a, map={})
        c.producer_fifo.extend([b"", b"data"])
        c.initiate_send()
        self.assertEqual(b.recv(10), b"data")
        c.close()
        b.close()


class Install(unittest.TestCase):
    def run_py(self, code, *args):
        return subprocess.run([sys.executable, *args, "-c", code] if not args else
                              [sys.executable, *args], input=code if args else None,
                              capture_output=True, text=True, timeout=60)

    def test_install(self):
        code = (
            "import sys, sockloop\n"
            "if sys.version_info < (3, 12):\n"
            "    try:\n"
            "        sockloop.install()\n"
            "    except RuntimeError as e:\n"
            "        print('refused', 'replace_stdlib' in str(e))\n"
            "    sockloop.install(replace_stdlib=True)\n"
            "else:\n"
            "    print('refused True')\n"
            "    sockloop.install()\n"
            "import asyncore, asynchat\n"
            "print(asyncore is sockloop.asyncore, asynchat is sockloop.asynchat)\n"
            "sockloop.install(replace_stdlib=True)\n")
        r = self.run_py(code)
        self.assertEqual(r.stdout.split(), ["refused", "True", "True", "True"], r.stderr)

    @unittest.skipIf(sys.version_info >= (3, 12), "no stdlib asyncore")
    def test_already_imported_stdlib_is_refused(self):
        code = ("import warnings; warnings.simplefilter('ignore')\n"
                "import asyncore, sockloop\n"
                "try:\n"
                "    sockloop.install(replace_stdlib=True)\n"
                "except RuntimeError:\n"
                "    print('refused')\n")
        r = self.run_py(code)
        self.assertEqual(r.stdout.split(), ["refused"], r.stderr)

    def test_python_m_sockloop_runs_a_module(self):
        r = subprocess.run(
            [sys.executable, "-m", "sockloop", "-c"], capture_output=True, text=True,
            timeout=60)
        self.assertNotEqual(r.returncode, 0)
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "prog.py")
            with open(path, "w") as f:
                f.write("import asyncore, sys, sockloop\n"
                        "print(asyncore is sockloop.asyncore, sys.argv[1:])\n")
            r = subprocess.run([sys.executable, "-m", "sockloop", path, "a", "b"],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout.strip(), "True ['a', 'b']", r.stderr)


if __name__ == "__main__":
    unittest.main()
