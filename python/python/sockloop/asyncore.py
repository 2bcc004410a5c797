"""asyncore for Python 3.8+, running on sockloop's event loop.

Every public name of CPython 3.11's ``asyncore``, with the same signatures and
semantics. The dispatcher classes are ordinary Python classes to subclass; the
loop's per-iteration work (asking every channel ``readable()``/``writable()``,
the wait, and the routing of events to the ``handle_*`` methods) runs in Rust on
sockloop's select, poll and epoll backends, with the GIL released while waiting.

Additions, all keyword-only or new names:

* ``loop(..., backend="epoll")`` (also ``"select"``, ``"poll"``): pick the backend
  by name. epoll keeps registrations between iterations and asks ``readable()`` /
  ``writable()`` again only for channels whose handlers ran, that were added or
  removed, or that were passed to ``update_interest()``; every channel is asked
  again at least once a second. select and poll ask every channel every
  iteration, as CPython does.
* ``loop(..., fixes=True)`` (also ``poll``/``poll2``): the fixes that change what
  CPython programs can observe, off by default: disconnect errors raised in a
  handler go to ``handle_close`` under select too (CPython: ``handle_error``
  under select, ``handle_close`` under poll); a hang-up that arrives with unread
  input keeps delivering read events until the handler reads end of file
  (CPython closes after one read, dropping the rest); an exception raised by
  ``readable()``/``writable()`` goes to that channel's ``handle_error`` instead
  of ending the loop.
* ``update_interest(obj)``: tell an epoll loop that ``obj``'s ``readable()`` or
  ``writable()`` answer changed outside its own handlers. ``send()`` of
  ``dispatcher_with_send`` and ``push*()`` of ``async_chat`` do it themselves.

See the package README for the deliberate differences from CPython.

The dispatcher classes and helpers follow CPython 3.11's ``asyncore`` statement for
statement, as "the same semantics" requires (CPython: Python Software Foundation
License); the loop and the routing are sockloop's, in Rust.
"""

import os
import select
import socket
import sys
import warnings
from errno import (EAGAIN, EALREADY, EBADF, ECONNABORTED, ECONNRESET, EINPROGRESS,
                   EINVAL, EISCONN, ENOTCONN, EPIPE, ESHUTDOWN, EWOULDBLOCK, errorcode)

from . import _sockloop

_DISCONNECTED = frozenset({ECONNRESET, ENOTCONN, ESHUTDOWN, ECONNABORTED, EPIPE, EBADF})

try:
    socket_map
except NameError:
    socket_map = {}


def _strerror(err):
    try:
        return os.strerror(err)
    except (ValueError, OverflowError, NameError):
        if err in errorcode:
            return errorcode[err]
        return "Unknown error %s" % err


class ExitNow(Exception):
    pass


_reraised_exceptions = (ExitNow, KeyboardInterrupt, SystemExit)


def _with_exception(obj, exc, method):
    # Calls obj.<method>() while `exc` is being handled, as inside the `except:` clauses
    # of CPython's read()/readwrite(), so that sys.exc_info() and compact_traceback()
    # in handle_error() see it. Called by the Rust routing.
    try:
        raise exc
    except BaseException:
        del exc
        getattr(obj, method)()


_sockloop._init(_reraised_exceptions, _with_exception, _DISCONNECTED)

# read(obj), write(obj), _exception(obj), readwrite(obj, flags): CPython's routing of
# one event, in Rust. They take any object with the handle_* methods.
read = _sockloop.read
write = _sockloop.write
_exception = _sockloop._exception
readwrite = _sockloop.readwrite

# id(map) -> (map, touched map keys, EpollState): the epoll mode's state for a map,
# kept between loop() calls (so loop(count=1) in a program's own loop stays cheap) until
# the map is found empty, close_all(map) runs, or a select/poll loop runs on it.
_epoll_watch = {}


def _touch(map, fd):
    entry = _epoll_watch.get(id(map))
    if entry is not None and entry[0] is map:
        entry[1].append(fd)


def update_interest(obj):
    """Tell a running epoll loop to ask ``obj.readable()``/``writable()`` again.

    Needed only with ``loop(backend="epoll")``, and only when the answer changed
    outside ``obj``'s own handlers (by another channel's handler or another
    thread). A no-op otherwise.
    """
    if _epoll_watch:
        _touch(obj._map, obj._fileno)


def _backend(use_poll, backend):
    if backend is None:
        return "poll" if use_poll and hasattr(select, "poll") else "select"
    if backend not in ("select", "poll", "epoll"):
        raise ValueError("backend must be 'select', 'poll' or 'epoll', not %r" % (backend,))
    if use_poll and backend == "select":
        raise ValueError("use_poll=True contradicts backend='select'")
    return backend


def _run(timeout, map, count, backend, fixes):
    fixes = bool(fixes)
    key = id(map)
    if backend != "epoll":
        if _epoll_watch:
            _forget(map)
        _sockloop.run(timeout, map, count, backend, fixes)
        return
    entry = _epoll_watch.get(key)
    if entry is None or entry[0] is not map:
        touched = []
        entry = _epoll_watch[key] = (map, touched, _sockloop.EpollState(touched))
    try:
        _sockloop.run(timeout, map, count, backend, fixes, entry[2])
    finally:
        if not map:
            _forget(map)


def _forget(map):
    entry = _epoll_watch.get(id(map))
    if entry is not None and entry[0] is map:
        del _epoll_watch[id(map)]


def poll(timeout=0.0, map=None, *, fixes=False):
    if map is None:
        map = socket_map
    _run(timeout, map, 1, "select", fixes)


def poll2(timeout=0.0, map=None, *, fixes=False):
    if map is None:
        map = socket_map
    _run(timeout, map, 1, "poll", fixes)


poll3 = poll2  # Alias for backward compatibility


def loop(timeout=30.0, use_poll=False, map=None, count=None, *, backend=None, fixes=False):
    if map is None:
        map = socket_map
    _run(timeout, map, count, _backend(use_poll, backend), fixes)


class dispatcher:

    debug = False
    connected = False
    accepting = False
    connecting = False
    closing = False
    addr = None
    ignore_log_types = frozenset({'warning'})

    def __init__(self, sock=None, map=None):
        if map is None:
            self._map = socket_map
        else:
            self._map = map

        self._fileno = None

        if sock:
            sock.setblocking(False)
            self.set_socket(sock, map)
            self.connected = True
            try:
                self.addr = sock.getpeername()
            except OSError as err:
                if err.errno in (ENOTCONN, EINVAL):
                    self.connected = False
                else:
                    self.del_channel(map)
                    raise
        else:
            self.socket = None

    def __repr__(self):
        status = [self.__class__.__module__ + "." + self.__class__.__qualname__]
        if self.accepting and self.addr:
            status.append('listening')
        elif self.connected:
            status.append('connected')
        if self.addr is not None:
            try:
                status.append('%s:%d' % self.addr)
            except TypeError:
                status.append(repr(self.addr))
        return '<%s at %#x>' % (' '.join(status), id(self))

    def add_channel(self, map=None):
        if map is None:
            map = self._map
        map[self._fileno] = self
        if _epoll_watch:
            _touch(map, self._fileno)

    def del_channel(self, map=None):
        fd = self._fileno
        if map is None:
            map = self._map
        if fd in map:
            del map[fd]
            if _epoll_watch:
                _touch(map, fd)
        self._fileno = None

    def create_socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        self.family_and_type = family, type
        sock = socket.socket(family, type)
        sock.setblocking(False)
        self.set_socket(sock)

    def set_socket(self, sock, map=None):
        self.socket = sock
        self._fileno = sock.fileno()
        self.add_channel(map)

    def set_reuse_addr(self):
        try:
            self.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_REUSEADDR,
                self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) | 1)
        except OSError:
            pass

    def readable(self):
        return True

    def writable(self):
        return True

    def listen(self, num):
        self.accepting = True
        if os.name == 'nt' and num > 5:
            num = 5
        result = self.socket.listen(num)
        if _epoll_watch:
            _touch(self._map, self._fileno)
        return result

    def bind(self, addr):
        self.addr = addr
        return self.socket.bind(addr)

    def connect(self, address):
        self.connected = False
        self.connecting = True
        if _epoll_watch:
            _touch(self._map, self._fileno)
        err = self.socket.connect_ex(address)
        if err in (EINPROGRESS, EALREADY, EWOULDBLOCK) \
                or err == EINVAL and os.name == 'nt':
            self.addr = address
            return
        if err in (0, EISCONN):
            self.addr = address
            self.handle_connect_event()
        else:
            raise OSError(err, errorcode[err])

    def accept(self):
        try:
            conn, addr = self.socket.accept()
        except TypeError:
            return None
        except OSError as why:
            if why.errno in (EWOULDBLOCK, ECONNABORTED, EAGAIN):
                return None
            else:
                raise
        else:
            return conn, addr

    def send(self, data):
        try:
            result = self.socket.send(data)
            return result
        except OSError as why:
            if why.errno == EWOULDBLOCK:
                return 0
            elif why.errno in _DISCONNECTED:
                self.handle_close()
                return 0
            else:
                raise

    def recv(self, buffer_size):
        try:
            data = self.socket.recv(buffer_size)
            if not data:
                self.handle_close()
                return b''
            else:
                return data
        except OSError as why:
            if why.errno in _DISCONNECTED:
                self.handle_close()
                return b''
            else:
                raise

    def close(self):
        self.connected = False
        self.accepting = False
        self.connecting = False
        self.del_channel()
        if self.socket is not None:
            try:
                self.socket.close()
            except OSError as why:
                if why.errno not in (ENOTCONN, EBADF):
                    raise

    def log(self, message):
        sys.stderr.write('log: %s\n' % str(message))

    def log_info(self, message, type='info'):
        if type not in self.ignore_log_types:
            print('%s: %s' % (type, message))

    def handle_read_event(self):
        if self.accepting:
            self.handle_accept()
        elif not self.connected:
            if self.connecting:
                self.handle_connect_event()
            self.handle_read()
        else:
            self.handle_read()

    def handle_connect_event(self):
        err = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, _strerror(err))
        self.handle_connect()
        self.connected = True
        self.connecting = False

    def handle_write_event(self):
        if self.accepting:
            return

        if not self.connected:
            if self.connecting:
                self.handle_connect_event()
        self.handle_write()

    def handle_expt_event(self):
        err = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            self.handle_close()
        else:
            self.handle_expt()

    def handle_error(self):
        nil, t, v, tbinfo = compact_traceback()

        try:
            self_repr = repr(self)
        except:  # noqa: E722 (asyncore's own bare except)
            self_repr = '<__repr__(self) failed for object at %0x>' % id(self)

        self.log_info(
            'uncaptured python exception, closing channel %s (%s:%s %s)' % (
                self_repr, t, v, tbinfo),
            'error')
        self.handle_close()

    def handle_expt(self):
        self.log_info('unhandled incoming priority event', 'warning')

    def handle_read(self):
        self.log_info('unhandled read event', 'warning')

    def handle_write(self):
        self.log_info('unhandled write event', 'warning')

    def handle_connect(self):
        self.log_info('unhandled connect event', 'warning')

    def handle_accept(self):
        pair = self.accept()
        if pair is not None:
            self.handle_accepted(*pair)

    def handle_accepted(self, sock, addr):
        sock.close()
        self.log_info('unhandled accepted event', 'warning')

    def handle_close(self):
        self.log_info('unhandled close event', 'warning')
        self.close()



# A dispatcher with an output buffer.
class dispatcher_with_send(dispatcher):

    def __init__(self, sock=None, map=None):
        dispatcher.__init__(self, sock, map)
        self.out_buffer = b''

    def initiate_send(self):
        num_sent = 0
        num_sent = dispatcher.send(self, self.out_buffer[:65536])
        self.out_buffer = self.out_buffer[num_sent:]

    def handle_write(self):
        self.initiate_send()

    def writable(self):
        return (not self.connected) or len(self.out_buffer)

    def send(self, data):
        if self.debug:
            self.log_info('sending %s' % repr(data))
        self.out_buffer = self.out_buffer + data
        self.initiate_send()
        if _epoll_watch:
            _touch(self._map, self._fileno)



def compact_traceback():
    t, v, tb = sys.exc_info()
    tbinfo = []
    if not tb:  # Must have a traceback
        raise AssertionError("traceback does not exist")
    while tb:
        tbinfo.append((
            tb.tb_frame.f_code.co_filename,
            tb.tb_frame.f_code.co_name,
            str(tb.tb_lineno)))
        tb = tb.tb_next

    del tb

    file, function, line = tbinfo[-1]
    info = ' '.join(['[%s|%s|%s]' % x for x in tbinfo])
    return (file, function, line), t, v, info


def close_all(map=None, ignore_all=False):
    if map is None:
        map = socket_map
    for x in list(map.values()):
        try:
            x.close()
        except OSError as x:
            if x.errno == EBADF:
                pass
            elif not ignore_all:
                raise
        except _reraised_exceptions:
            raise
        except:  # noqa: E722
            if not ignore_all:
                raise
    map.clear()
    if _epoll_watch:
        _forget(map)


# Pipes, ttys and other pollable descriptors as channels (POSIX only). Regular files
# are always ready, for every backend.
if os.name == 'posix':
    class file_wrapper:
        def __init__(self, fd):
            self.fd = os.dup(fd)

        def __del__(self):
            if self.fd >= 0:
                warnings.warn("unclosed file %r" % self, ResourceWarning, source=self)
            self.close()

        def recv(self, *args):
            return os.read(self.fd, *args)

        def send(self, *args):
            return os.write(self.fd, *args)

        def getsockopt(self, level, optname, buflen=None):
            if (level == socket.SOL_SOCKET and
                    optname == socket.SO_ERROR and
                    not buflen):
                return 0
            raise NotImplementedError("Only asyncore specific behaviour implemented.")

        read = recv
        write = send

        def close(self):
            if self.fd < 0:
                return
            fd = self.fd
            self.fd = -1
            os.close(fd)

        def fileno(self):
            return self.fd

    class file_dispatcher(dispatcher):

        def __init__(self, fd, map=None):
            dispatcher.__init__(self, None, map)
            self.connected = True
            try:
                fd = fd.fileno()
            except AttributeError:
                pass
            self.set_file(fd)
            os.set_blocking(fd, False)

        def set_file(self, fd):
            self.socket = file_wrapper(fd)
            self._fileno = self.socket.fileno()
            self.add_channel()
