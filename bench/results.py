"""Shared by the benchmarks: write one bench's section of bench/RESULTS.md, newest entry first.

A section sits between `<!-- NAME: begin -->` and `<!-- NAME: end -->`: a header (title and method), then
entries, each starting with a `### ` line (date and conditions). Writing a new entry replaces the header,
puts the entry first and keeps the older entries (up to `keep` in all). Text outside the markers is kept.
"""
import os
import re

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'RESULTS.md')


def markers(name):
    return '<!-- %s: begin -->' % name, '<!-- %s: end -->' % name


def write_section(name, header, entry, keep=10, path=RESULTS):
    """Record `entry` (text starting with '### ') first in section `name`, under `header`."""
    begin, end = markers(name)
    header, entry = header.rstrip('\n') + '\n\n', entry.rstrip('\n') + '\n'
    text = open(path).read() if os.path.exists(path) else '# Benchmark results\n\n'
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        inner, after = rest.split(end, 1)
        old = inner.split('\n### ', 1)
        history = ('### ' + old[1]) if len(old) > 1 else ''
        entries = [e for e in re.split(r'(?m)^(?=### )', history) if e.strip()][:keep - 1]
        older = ''.join(e.rstrip('\n') + '\n\n' for e in entries).rstrip('\n') + '\n' if entries else ''
        text = before + begin + '\n' + header + entry + ('\n' + older if older else '') + end + after
    else:
        text = text.rstrip('\n') + '\n\n' + begin + '\n' + header + entry + end + '\n'
    with open(path, 'w') as f:
        f.write(text)
