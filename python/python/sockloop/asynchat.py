"""asynchat for Python 3.8+, running on sockloop's event loop.

Every public name of CPython 3.11's ``asynchat`` (``async_chat``,
``simple_producer``, ``find_prefix_at_end``), with the same signatures and
semantics, built on :mod:`sockloop.asyncore`. Two harmless fixes: the terminator
defaults to ``None`` (CPython left it unset, so reading before
``set_terminator`` raised ``AttributeError``), and an empty item in the output
queue is skipped instead of costing a zero-length ``send()``.

The classes follow CPython 3.11's ``asynchat`` statement for statement, as "the same
semantics" requires (CPython: Python Software Foundation License).
"""

from collections import deque

from . import asyncore


class async_chat(asyncore.dispatcher):
    """A dispatcher for command/response protocols: input is split at a
    terminator (bytes, a byte count, or None for "everything"), output is a
    FIFO of data and producers."""

    # Input and output read/write sizes; subclasses may override them.
    ac_in_buffer_size = 65536
    ac_out_buffer_size = 65536

    # Encoding of str terminators and data (off by default, as in CPython).
    use_encoding = 0
    encoding = 'latin-1'

    terminator = None

    def __init__(self, sock=None, map=None):
        self.ac_in_buffer = b''
        self.incoming = []
        self.producer_fifo = deque()
        asyncore.dispatcher.__init__(self, sock, map)

    def collect_incoming_data(self, data):
        raise NotImplementedError("must be implemented in subclass")

    def _collect_incoming_data(self, data):
        self.incoming.append(data)

    def _get_data(self):
        d = b''.join(self.incoming)
        del self.incoming[:]
        return d

    def found_terminator(self):
        raise NotImplementedError("must be implemented in subclass")

    def set_terminator(self, term):
        """Set the input delimiter: bytes of any length, an int, or None."""
        if isinstance(term, str) and self.use_encoding:
            term = bytes(term, self.encoding)
        elif isinstance(term, int) and term < 0:
            raise ValueError('the number of received bytes must be positive')
        self.terminator = term

    def get_terminator(self):
        return self.terminator

    def handle_read(self):
        try:
            data = self.recv(self.ac_in_buffer_size)
        except BlockingIOError:
            return
        except OSError:
            self.handle_error()
            return

        if isinstance(data, str) and self.use_encoding:
            data = bytes(str, self.encoding)
        self.ac_in_buffer = self.ac_in_buffer + data

        # Deliver every complete record in the buffer; the terminator is asked
        # again for each, since found_terminator() may change it.
        while self.ac_in_buffer:
            lb = len(self.ac_in_buffer)
            terminator = self.get_terminator()
            if not terminator:
                # no terminator: collect everything
                self.collect_incoming_data(self.ac_in_buffer)
                self.ac_in_buffer = b''
            elif isinstance(terminator, int):
                # a byte count
                n = terminator
                if lb < n:
                    self.collect_incoming_data(self.ac_in_buffer)
                    self.ac_in_buffer = b''
                    self.terminator = self.terminator - lb
                else:
                    self.collect_incoming_data(self.ac_in_buffer[:n])
                    self.ac_in_buffer = self.ac_in_buffer[n:]
                    self.terminator = 0
                    self.found_terminator()
            else:
                # a delimiter: deliver the data before it, keep a partial
                # delimiter at the end of the buffer for the next read
                terminator_len = len(terminator)
                index = self.ac_in_buffer.find(terminator)
                if index != -1:
                    if index > 0:
                        self.collect_incoming_data(self.ac_in_buffer[:index])
                    self.ac_in_buffer = self.ac_in_buffer[index + terminator_len:]
                    self.found_terminator()
                else:
                    index = find_prefix_at_end(self.ac_in_buffer, terminator)
                    if index:
                        if index != lb:
                            self.collect_incoming_data(self.ac_in_buffer[:-index])
                            self.ac_in_buffer = self.ac_in_buffer[-index:]
                        break
                    else:
                        self.collect_incoming_data(self.ac_in_buffer)
                        self.ac_in_buffer = b''

    def handle_write(self):
        self.initiate_send()

    def handle_close(self):
        self.close()

    def push(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError('data argument must be byte-ish (%r)', type(data))
        sabs = self.ac_out_buffer_size
        if len(data) > sabs:
            for i in range(0, len(data), sabs):
                self.producer_fifo.append(data[i:i + sabs])
        else:
            self.producer_fifo.append(data)
        self.initiate_send()
        if asyncore._epoll_watch:
            asyncore._touch(self._map, self._fileno)

    def push_with_producer(self, producer):
        self.producer_fifo.append(producer)
        self.initiate_send()
        if asyncore._epoll_watch:
            asyncore._touch(self._map, self._fileno)

    def readable(self):
        "predicate for inclusion in the readable for select()"
        return 1

    def writable(self):
        "predicate for inclusion in the writable for select()"
        return self.producer_fifo or (not self.connected)

    def close_when_done(self):
        "automatically close this channel once the outgoing queue is empty"
        self.producer_fifo.append(None)
        if asyncore._epoll_watch:
            asyncore._touch(self._map, self._fileno)

    def initiate_send(self):
        while self.producer_fifo and self.connected:
            first = self.producer_fifo[0]
            # None marks close_when_done(); an empty item is dropped
            if not first:
                del self.producer_fifo[0]
                if first is None:
                    self.handle_close()
                    return
                continue

            # a slice of data, or the next chunk of a producer
            obs = self.ac_out_buffer_size
            try:
                data = first[:obs]
            except TypeError:
                data = first.more()
                if data:
                    self.producer_fifo.appendleft(data)
                else:
                    del self.producer_fifo[0]
                continue

            if isinstance(data, str) and self.use_encoding:
                data = bytes(data, self.encoding)

            try:
                num_sent = self.send(data)
            except OSError:
                self.handle_error()
                return

            if num_sent:
                if num_sent < len(data) or obs < len(first):
                    self.producer_fifo[0] = first[num_sent:]
                else:
                    del self.producer_fifo[0]
            # one send per call, as in CPython: the rest on the next write event
            return

    def discard_buffers(self):
        # Emergencies only!
        self.ac_in_buffer = b''
        del self.incoming[:]
        self.producer_fifo.clear()


class simple_producer:
    """Yields ``data`` in chunks of ``buffer_size`` bytes."""

    def __init__(self, data, buffer_size=512):
        self.data = data
        self.buffer_size = buffer_size

    def more(self):
        if len(self.data) > self.buffer_size:
            result = self.data[:self.buffer_size]
            self.data = self.data[self.buffer_size:]
            return result
        else:
            result = self.data
            self.data = b''
            return result


def find_prefix_at_end(haystack, needle):
    """The length of the longest proper prefix of ``needle`` that ends ``haystack``.

    find_prefix_at_end(b"qwerty\\r", b"\\r\\n") == 1
    """
    l = len(needle) - 1  # noqa: E741
    while l and not haystack.endswith(needle[:l]):
        l -= 1  # noqa: E741
    return l
