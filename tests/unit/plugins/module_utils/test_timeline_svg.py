# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The timeline picture: CSV samples parsed, a valid SVG with one line per stack and the steps marked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.timeline_svg import iso_to_epoch, parse_csv, render

SVG = '{http://www.w3.org/2000/svg}'
T0 = 1795600000.0  # 2026-11-25T...Z

CSV = """# calls per stack
time,primary,secondary
%d,10,0
%d,6,4
garbage line
%d,0,9
%d,x,1
""" % (T0, T0 + 30, T0 + 60, T0 + 61)


def test_parse_csv_keeps_the_header_order_and_skips_bad_lines():
    names, rows = parse_csv(CSV)
    assert names == ['primary', 'secondary']
    assert rows == [(T0, [10, 0]), (T0 + 30, [6, 4]), (T0 + 60, [0, 9])]


def test_parse_csv_needs_the_header():
    with pytest.raises(ValueError, match='header'):
        parse_csv('1,2,3\n')


def test_iso_times_as_the_report_writes_them():
    assert iso_to_epoch('2026-12-02T10:00:00Z') == iso_to_epoch('2026-12-02T10:00:00+00:00')
    assert iso_to_epoch('2026-12-02T10:00:01.500000Z') - iso_to_epoch('2026-12-02T10:00:00Z') == 1.5


def svg_of(steps):
    names, rows = parse_csv(CSV)
    return ET.fromstring(render(names, rows, steps))


def test_one_line_per_stack_with_its_peak_in_the_legend():
    root = svg_of([])
    lines = root.findall('.//%spolyline' % SVG)
    assert [line.find('%stitle' % SVG).text for line in lines] == ['primary', 'secondary']
    assert len(lines[0].get('points').split()) == 3
    texts = [t.text for t in root.iter('%stext' % SVG)]
    assert 'primary (peak 10)' in texts and 'secondary (peak 9)' in texts


def test_steps_inside_the_samples_are_marked_the_others_left_out():
    def iso(epoch):
        return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat()

    steps = [{'step': 'before', 'ended': iso(T0 - 100)},
             {'step': 'switch to maintenance', 'ended': iso(T0 + 20)},
             {'step': 'drain primary', 'ended': iso(T0 + 45)},
             {'step': 'broken', 'ended': 'not a time'},
             {'step': 'after', 'ended': iso(T0 + 500)}]
    texts = [t.text for t in svg_of(steps).iter('%stext' % SVG)]
    assert 'switch to maintenance' in texts and 'drain primary' in texts
    assert 'before' not in texts and 'after' not in texts and 'broken' not in texts


def test_names_are_escaped_and_no_samples_still_gives_a_picture():
    root = ET.fromstring(render(['a<b'], [(T0, [1])], [], title='x & y'))
    assert root.find('%stitle' % SVG).text == 'x & y'
    empty = ET.fromstring(render([], [], []))
    assert 'no call samples' in [t.text for t in empty.iter('%stext' % SVG)]
