# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade's timeline as an SVG picture: calls per stack over time, the step boundaries marked.

Input: call samples (``time`` in seconds since the epoch, one count per stack) measured while upgrade.yml ran
(the lab demo and the bench sample each stack's Asterisk), and the report's steps (``step``, ``ended`` ISO
time). Output: a self-contained SVG document (no script, no external resource), so a browser or a Markdown
viewer shows it beside the report. Standard library only; pure functions.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
from xml.sax.saxutils import escape

WIDTH = 960
HEIGHT = 440
MARGIN = dict(left=56, right=16, top=40, bottom=116)
LABEL_ROWS = 5
CHAR_W = 5.6  # width of one character of the 10 px step labels, roughly
# colour per series, in the order the series first appear (primary blue, secondary orange, then others)
COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd')


def parse_csv(text):
    """Samples from CSV text: a header ``time,<name>,<name>...`` then one line per sample (``#`` comments and
    blank lines ignored). Returns ``(names, [(time, [counts])])``; a line that does not parse is skipped."""
    names, rows = None, []
    for raw in (text or '').splitlines():
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        cells = [c.strip() for c in line.split(',')]
        if names is None:
            if cells[0] != 'time' or len(cells) < 2:
                raise ValueError('the samples must start with a header "time,<stack>,...", got %r' % line)
            names = cells[1:]
            continue
        if len(cells) != len(names) + 1:
            continue
        try:
            rows.append((float(cells[0]), [int(float(c)) for c in cells[1:]]))
        except ValueError:
            continue
    return names or [], sorted(rows)


def iso_to_epoch(value):
    """Seconds since the epoch of an ISO 8601 UTC time as the report writes it (``...Z`` or ``+00:00``)."""
    text = str(value).strip().replace('Z', '+00:00')
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def _nice_step(span, target):
    """A round tick step (1, 2, 5 x 10^n) giving about ``target`` ticks over ``span``."""
    raw = max(span / float(max(1, target)), 1e-9)
    magnitude = 10 ** len(str(int(raw))) / 10.0 if raw >= 1 else 1.0
    for mult in (1, 2, 5, 10):
        if raw <= mult * magnitude:
            return mult * magnitude
    return 10 * magnitude


def _fmt_clock(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%H:%M:%S')


def render(names, rows, steps=(), title='Calls per stack during the upgrade'):
    """The SVG document (text). ``rows``: ``[(time, [count per name])]`` sorted by time; ``steps``: dicts with
    ``step`` and ``ended`` (ISO time or seconds since the epoch). Steps outside the sampled time are left out."""
    left, right, top, bottom = MARGIN['left'], MARGIN['right'], MARGIN['top'], MARGIN['bottom']
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (WIDTH, HEIGHT, WIDTH, HEIGHT),
           '<title>%s</title>' % escape(title),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>' % (left, escape(title))]
    if not rows:
        out.append('<text x="%d" y="%d">no call samples</text>' % (left, top + plot_h // 2))
        out.append('</svg>')
        return '\n'.join(out) + '\n'
    t0, t1 = rows[0][0], rows[-1][0]
    span = max(t1 - t0, 1.0)
    peak = max([max(counts) for _t, counts in rows] + [1])
    y_step = _nice_step(peak, 5)
    y_max = y_step * (int(peak / y_step) + 1)

    def x_of(t):
        return left + (t - t0) / span * plot_w

    def y_of(v):
        return top + plot_h - v / float(y_max) * plot_h

    # axes and grid
    out.append('<g stroke="#ccc" stroke-width="1">')
    value = 0.0
    while value <= y_max + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>' % (left, y_of(value), left + plot_w, y_of(value)))
        value += y_step
    out.append('</g>')
    value = 0.0
    while value <= y_max + 1e-9:
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 6, y_of(value) + 4, value))
        value += y_step
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">calls</text>'
               % (top + plot_h // 2, top + plot_h // 2))
    x_step = _nice_step(span, 8)
    tick = 0.0
    while tick <= span + 1e-9:
        x = x_of(t0 + tick)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>' % (x, top + plot_h, x, top + plot_h + 4))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, top + plot_h + 16, _fmt_clock(t0 + tick)))
        tick += x_step
    out.append('<text x="%d" y="%d" text-anchor="end">UTC</text>' % (left + plot_w, top + plot_h + 30))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (left, top, plot_w, plot_h))

    # step boundaries: a dashed line and the step's name under the axis, on the first of LABEL_ROWS rows where it
    # does not overlap the previous label of that row (the least crowded row otherwise)
    row_end = [float('-inf')] * LABEL_ROWS
    for step in steps or ():
        try:
            ended = float(step['ended']) if isinstance(step.get('ended'), (int, float)) else iso_to_epoch(step['ended'])
        except (KeyError, TypeError, ValueError):
            continue
        if ended < t0 or ended > t1 + 1:
            continue
        x = x_of(min(ended, t1))
        label = str(step.get('step', ''))
        half = len(label) * CHAR_W / 2.0
        free = [r for r in range(LABEL_ROWS) if row_end[r] + 6 <= x - half]
        row = free[0] if free else min(range(LABEL_ROWS), key=lambda r: row_end[r])
        row_end[row] = x + half
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888" stroke-dasharray="4 3"/>'
                   % (x, top, x, top + plot_h + 34 + 14 * row))
        # a label that would leave the picture is aligned on its line's side instead of centred
        anchor = 'end' if x + half > WIDTH - 2 else ('start' if x - half < 2 else 'middle')
        out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="%s" fill="#444">%s</text>'
                   % (x, top + plot_h + 46 + 14 * row, anchor, escape(label)))

    # one line per stack, and the legend
    for index, name in enumerate(names):
        colour = COLOURS[index % len(COLOURS)]
        points = ' '.join('%.1f,%.1f' % (x_of(t), y_of(counts[index])) for t, counts in rows)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>'
                   % (colour, points, escape(name)))
        lx = left + plot_w - 150 * (len(names) - index)
        out.append('<rect x="%d" y="12" width="14" height="4" fill="%s"/>' % (lx, colour))
        peak_here = max(counts[index] for _t, counts in rows)
        out.append('<text x="%d" y="18">%s (peak %d)</text>' % (lx + 18, escape(name), peak_here))
    out.append('</svg>')
    return '\n'.join(out) + '\n'
