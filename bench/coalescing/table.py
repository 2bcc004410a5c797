#!/usr/bin/env python3
"""Reads `NAME CALL COUNT` lines (from run.sh) and prints a before/after Markdown table."""
import collections, sys

counts = collections.defaultdict(dict)
for line in sys.stdin:
    name, call, n = line.split()
    counts[call][name] = int(n)
print("| system call | before | after |")
print("|---|---:|---:|")
for call in sorted(counts, key=lambda c: (c == "total", c)):
    before, after = counts[call].get("before", 0), counts[call].get("after", 0)
    print(f"| {call} | {before:,} | {after:,} |")
