#!/usr/bin/env python3
"""Minimal callgrind-format parser (positions: line, events: Ir).
Usage: cgparse.py FILE [--norm-fn REGEX] [--top N] [--lines REGEX]
Prints total Ir, call counts of syscall wrappers, self/inclusive per function,
and self cost per source file:line (inlined code attributed to its own source)."""
import re, sys, collections, argparse
ap = argparse.ArgumentParser()
ap.add_argument('file')
ap.add_argument('--top', type=int, default=40)
ap.add_argument('--norm', type=float, default=0, help='messages (divide by)')
ap.add_argument('--norm-fn', default=r'^__libc_send$|^send$', help='callee whose call count = messages')
ap.add_argument('--lines', default=None, help='regex on source file for per-line listing')
ap.add_argument('--incl-filter', default=None)
a = ap.parse_args()
names = {'fl': {}, 'fn': {}, 'ob': {}}
def name(kind, s):
    m = re.match(r'\((\d+)\)(?:\s+(.*))?$', s)
    if not m: return s
    i, n = m.group(1), m.group(2)
    d = names[kind]
    if n is not None: d[i] = n
    return d.get(i, '?'+i)
selfc = collections.Counter(); incl_calls = collections.Counter(); ncalls = collections.Counter()
linec = collections.Counter(); fnline = collections.Counter()
callpairs = collections.Counter(); callpair_n = collections.Counter()
total = 0
cur_fl = cur_fi = cur_fn = None; cfn = None; pending_call = None; last_line = 0
for raw in open(a.file):
    line = raw.rstrip('\n')
    if not line or line[0] == '#': continue
    if line[0].isdigit() or line[0] in '+-*':
        parts = line.split()
        p = parts[0]
        if p[0] == '+': ln = last_line + int(p[1:])
        elif p[0] == '-': ln = last_line - int(p[1:])
        elif p == '*': ln = last_line
        else: ln = int(p)
        last_line = ln
        c = int(parts[1]) if len(parts) > 1 else 0
        if pending_call is not None:
            callee, n = pending_call
            incl_calls[cur_fn] += c
            ncalls[callee] += n
            callpairs[(cur_fn, callee)] += c; callpair_n[(cur_fn, callee)] += n
            pending_call = None
        else:
            selfc[cur_fn] += c; total += c
            linec[(cur_fi, ln)] += c
            fnline[(cur_fn, cur_fi, ln)] += c
        continue
    k, _, v = line.partition('=')
    if k == 'fl': cur_fl = cur_fi = name('fl', v)
    elif k in ('fi', 'fe'): cur_fi = name('fl', v)
    elif k == 'fn': cur_fn = name('fn', v); cur_fi = cur_fl
    elif k == 'cfn': cfn = name('fn', v)
    elif k in ('cfi', 'cfl'): name('fl', v)
    elif k in ('ob', 'cob'): name('ob', v)
    elif k == 'calls':
        pending_call = (cfn, int(v.split()[0]))
msgs = a.norm
if not msgs:
    msgs = sum(n for f, n in ncalls.items() if re.search(a.norm_fn, f))
# sockloop makes its send/recv system calls itself (rustix), without libc's wrappers,
# and Channel::push is inlined into the hook: there, one read event (one handle_read
# call) is one echoed message in 64 B depth-1 ping-pong (the Channel::recv count, printed
# below, shows it: 1.000 per message).
for fallback in (r'^sockloop::channel::Channel::push$', r'as sockloop::dispatcher::Dispatcher(<[^>]*>)?>::handle_read$'):
    if msgs or a.norm_fn != ap.get_default('norm_fn'):
        break
    msgs = sum(n for f, n in ncalls.items() if re.search(fallback, f))
    if msgs:
        a.norm_fn = fallback
print(f'normalised by calls to {a.norm_fn}')
print(f'total Ir {total:,}  msgs(norm) {msgs:,.0f}  Ir/msg {total/max(msgs,1):,.0f}')
for f in sorted(ncalls, key=lambda f: -ncalls[f]):
    if re.search(r'^(__libc_)?(send|recv|epoll_wait|epoll_ctl|write|read|clock_gettime|__clock_gettime|malloc|free|__libc_malloc|__libc_free|realloc|memcpy.*|__memcpy.*|accept4|syscall)$', f) or re.search(r'^sockloop::channel::Channel::(recv|send|push)$|Dispatcher(<[^>]*>)?>::handle_read$', f):
        print(f'  calls {f}: {ncalls[f]:,}  ({ncalls[f]/max(msgs,1):.3f}/msg)')
# inclusive = self + callees (approx, recursion ignored)
inc = collections.Counter()
for f in set(selfc) | set(incl_calls): inc[f] = selfc[f] + incl_calls[f]
print(f'\n== self Ir per function (top {a.top}) ==')
for f, c in selfc.most_common(a.top):
    print(f'{c/msgs:9.1f}/msg {100*c/total:5.1f}%  {f}')
print(f'\n== inclusive Ir per function (top {a.top}) ==')
for f, c in inc.most_common(a.top):
    if a.incl_filter and not re.search(a.incl_filter, f): continue
    print(f'{c/msgs:9.1f}/msg {100*c/total:5.1f}%  {f}')
print(f'\n== self Ir per source line (top {a.top}) ==')
for (fi, ln), c in linec.most_common(a.top):
    print(f'{c/msgs:9.1f}/msg {100*c/total:5.1f}%  {fi.split("/src/")[-1] if fi else fi}:{ln}')
if a.lines:
    print(f'\n== lines in files matching {a.lines} (sorted) ==')
    for (fi, ln), c in sorted(linec.items(), key=lambda x: (x[0][0] or '', x[0][1])):
        if fi and re.search(a.lines, fi) and c/msgs >= 0.5:
            print(f'{c/msgs:9.1f}/msg  {fi.split("/src/")[-1]}:{ln}')
import os
fr = os.environ.get('FNLINES')
if fr:
    print(f'\n== per-line self cost inside functions matching {fr} ==')
    by = collections.defaultdict(list)
    for (fn, fi, ln), c in fnline.items():
        if fn and re.search(fr, fn): by[fn].append((fi, ln, c))
    for fn, rows in by.items():
        tot = sum(r[2] for r in rows)
        print(f'--- {fn}: {tot/msgs:.1f}/msg')
        for fi, ln, c in sorted(rows, key=lambda r: (r[0] or '', r[1])):
            if c/msgs >= 0.3:
                print(f'   {c/msgs:7.1f}  {(fi or "").split("/src/")[-1]}:{ln}')
    print('\n== calls from functions (callee cost incl, per msg) ==')
    for (f, g), c in sorted(callpairs.items(), key=lambda x: -x[1]):
        if f and re.search(fr, f) and c/msgs >= 0.3:
            print(f'   {c/msgs:7.1f}/msg  n={callpair_n[(f,g)]/msgs:.3f}/msg  {f} -> {g}')
