"""Trace CPython's asynchat input splitting, for tests/loop/chat_differential.rs.

Usage: python3 -W ignore tests/py/asynchat_trace.py < cases.json

Needs a CPython that still ships asynchat (3.11 or older).

stdin: a JSON list of cases, each an object:
    "initial":  the terminator set before the first read
    "chunks":   list of hex strings, what each recv() returns (non-empty)
    "switches": list of [k, terminator]: set_terminator(terminator) inside
                the k-th (0-based) found_terminator call
    "collect_switches": optional, list of [k, terminator]: the same inside the
                k-th collect_incoming_data call (observe mode only)
    "merge":    optional, default true: merge adjacent data callbacks
    "observe":  optional, default false: record what each hook sees (below)
    "exclude":  optional, default true: see below
A terminator is null (None), {"bytes": "<hex>"} or {"count": n}.

stdout: a JSON list with one entry per case, one case per line: the list of
callbacks, ["data", "<hex>"] for collect_incoming_data and ["term"] for
found_terminator.

In observe mode (never merged) the callbacks are ["collect", "<hex>", T] and
["found", T], T being get_terminator() at the hook's entry, before its own
set_terminator. Where sockloop deliberately differs (see "Differences from
asynchat" on sockloop's AsyncChat), the trace ends, right after the callback
that made the switch, with ["excluded", reason]:
    "switch-in-counted-collect": set_terminator inside collect_incoming_data
        while a count is being received (asynchat then overwrites the new
        terminator with 0, subtracts the data from it, or fails with a
        TypeError);
    "switch-over-held-partial": set_terminator inside collect_incoming_data
        whose data ends before a kept partial terminator (asynchat rescans the
        kept bytes only after the next recv).
With "exclude": false (default true) the trace goes on instead, to show what
asynchat really does there. An exception from asynchat ends the trace with ["error", "<exception type>"].

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

    def __init__(self, sock, initial, switches, collect_switches=None, observe=False):
        asynchat.async_chat.__init__(self, sock, map={})
        self.set_terminator(initial)
        self.switches = switches
        self.collect_switches = collect_switches or {}
        self.observe = observe
        self.mark_exclusions = True
        self.found = 0
        self.collected = 0
        self.stopped = False
        self.events = []

    def collect_incoming_data(self, data):
        assert data, "asynchat never reports empty data"
        if self.stopped:
            return
        if not self.observe:
            self.events.append(["data", bytes(data)])
            return
        seen = self.get_terminator()
        self.events.append(["collect", bytes(data), term_json(seen)])
        k = self.collected
        self.collected += 1
        if k not in self.collect_switches:
            return
        # handle_read assigns ac_in_buffer after this call returns: what follows
        # this data in the buffer is still visible here.
        rest = self.ac_in_buffer[len(data):]
        if isinstance(seen, int) and seen > 0:
            self.exclude("switch-in-counted-collect")
        elif isinstance(seen, bytes) and seen and rest and seen not in rest:
            self.exclude("switch-over-held-partial")
        self.set_terminator(self.collect_switches[k])

    def exclude(self, reason):
        if not self.mark_exclusions:
            return
        self.events.append(["excluded", reason])
        self.stopped = True

    def found_terminator(self):
        if self.stopped:
            return
        if self.observe:
            self.events.append(["found", term_json(self.get_terminator())])
        else:
            self.events.append(["term"])
        if self.found in self.switches:
            self.set_terminator(self.switches[self.found])
        self.found += 1


def term_json(t):
    if t is None:
        return None
    if isinstance(t, int):
        return {"count": t}
    return {"bytes": bytes(t).hex()}


def trace(case):
    chunks = [bytes.fromhex(c) for c in case["chunks"]]
    switches = {k: terminator(t) for k, t in case.get("switches", [])}
    observe = case.get("observe", False)
    collect_switches = {k: terminator(t) for k, t in case.get("collect_switches", [])}
    chat = Tracer(
        FakeSocket(chunks), terminator(case.get("initial")), switches, collect_switches, observe
    )
    chat.mark_exclusions = case.get("exclude", True)
    for _ in chunks:
        try:
            chat.handle_read()
        except Exception as e:  # asynchat's own failure, e.g. a TypeError
            if not observe:
                raise
            chat.events.append(["error", type(e).__name__])
            break
        if chat.stopped:
            break
    if observe:
        return [[ev[0], ev[1].hex(), ev[2]] if ev[0] == "collect" else ev for ev in chat.events]
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
