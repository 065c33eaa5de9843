# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/results.py: each benchmark's section of RESULTS.md, newest entry first, text around it kept."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'bench'))

import results  # noqa: E402  pylint: disable=wrong-import-position


def test_new_section_is_appended_and_others_kept(tmp_path):
    path = tmp_path / 'RESULTS.md'
    path.write_text('# Benchmark results\n\nintro\n\n<!-- other: begin -->\nkeep me\n<!-- other: end -->\n')
    results.write_section('bench/x.py', '## X', '### day 1\n\n| a |', path=str(path))
    text = path.read_text()
    assert text.startswith('# Benchmark results\n\nintro\n\n<!-- other: begin -->\nkeep me\n<!-- other: end -->\n')
    assert text.endswith('<!-- bench/x.py: begin -->\n## X\n\n### day 1\n\n| a |\n<!-- bench/x.py: end -->\n')


def test_newest_first_history_kept_and_bounded(tmp_path):
    path = tmp_path / 'RESULTS.md'
    for day in range(1, 6):
        results.write_section('bench/x.py', '## X v%d' % day, '### day %d\n\nrow %d' % (day, day), keep=3,
                              path=str(path))
    text = path.read_text()
    assert text.count('## X') == 1 and '## X v5' in text
    assert [line for line in text.splitlines() if line.startswith('### ')] == ['### day 5', '### day 4', '### day 3']
    assert 'row 5\n\n### day 4\n\nrow 4\n\n### day 3\n\nrow 3\n<!-- bench/x.py: end -->' in text


def test_rewriting_keeps_text_after_the_section(tmp_path):
    path = tmp_path / 'RESULTS.md'
    results.write_section('a', '## A', '### 1\n\nx', path=str(path))
    with open(str(path), 'a') as f:
        f.write('\ntrailer\n')
    results.write_section('a', '## A', '### 2\n\ny', path=str(path))
    text = path.read_text()
    assert text.endswith('<!-- a: end -->\n\ntrailer\n') and text.index('### 2') < text.index('### 1')
