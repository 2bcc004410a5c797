"""Trace CPython's asynchat input splitting, for tests/chat_differential.rs.

Usage: python3 -W ignore tests/py/asynchat_trace.py < cases.json

Needs a CPython that still ships asynchat (3.11 or older).

stdin: a JSON list of cases, each an object:
    "initial":  the terminator set before the first read
    "chunks":   list of hex strings, what each recv() returns (non-empty)
    "switches": list of [k, terminator]: set_terminator(terminator) inside
                the k-th (0-based) found_terminator call
    "merge":    optional, default true: merge adjacent data callbacks
A terminator is null (None), {"bytes": "<hex>"} or {"count": n}.

stdout: a JSON list with one entry per case, one case per line: the list of
callbacks, ["data", "<hex>"] for collect_incoming_data and ["term"] for
found_terminator.

Each case runs through a real asynchat.async_chat over a fake socket whose
recv() returns the chunks in order; handle_read() is called once per chunk,
with ac_in_buffer_size large enough that every chunk is read whole.
"""

import json
import sys

try:
    import asynchat
except ImportError as e:  # Python 3.12 removed asynchat.
    sys.exit(f"asynchat_trace.py: cannot import asynchat ({e}); needs CPython <= 3.11")


class FakeSocket:
    """Just enough of a socket for asyncore.dispatcher and async_chat."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def setblocking(self, flag):
        pass

    def fileno(self):
        return 1_000_000  # only a key in the private map

    def getpeername(self):
        return ("127.0.0.1", 9)

    def recv(self, bufsize):
        chunk = self.chunks.pop(0)
        assert len(chunk) <= bufsize, "chunk larger than ac_in_buffer_size"
        return chunk

    def close(self):
        pass


def terminator(spec):
    if spec is None:
        return None
    if "bytes" in spec:
        return bytes.fromhex(spec["bytes"])
    return int(spec["count"])


class Tracer(asynchat.async_chat):
    ac_in_buffer_size = 1 << 30

    def __init__(self, sock, initial, switches):
        asynchat.async_chat.__init__(self, sock, map={})
        self.set_terminator(initial)
        self.switches = switches
        self.found = 0
        self.events = []

    def collect_incoming_data(self, data):
        assert data, "asynchat never reports empty data"
        self.events.append(["data", bytes(data)])

    def found_terminator(self):
        self.events.append(["term"])
        if self.found in self.switches:
            self.set_terminator(self.switches[self.found])
        self.found += 1


def trace(case):
    chunks = [bytes.fromhex(c) for c in case["chunks"]]
    switches = {k: terminator(t) for k, t in case.get("switches", [])}
    chat = Tracer(FakeSocket(chunks), terminator(case.get("initial")), switches)
    for _ in chunks:
        chat.handle_read()
    out = []
    for ev in chat.events:
        if ev[0] == "data" and out and out[-1][0] == "data" and case.get("merge", True):
            out[-1][1] += ev[1]
        else:
            out.append(list(ev))
    return [[ev[0], ev[1].hex()] if ev[0] == "data" else ev for ev in out]


def main():
    cases = json.load(sys.stdin)
    lines = [json.dumps(trace(case), separators=(",", ":")) for case in cases]
    sys.stdout.write("[\n" + ",\n".join(lines) + "\n]\n")


if __name__ == "__main__":
    main()
