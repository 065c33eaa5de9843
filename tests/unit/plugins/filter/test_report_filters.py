# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report's filters: human_duration and timeline_svg."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wazo.maintenance_mode.plugins.filter.human_duration import human_duration
from ansible_collections.wazo.maintenance_mode.plugins.filter.timeline_svg import timeline_svg


@pytest.mark.parametrize('seconds, text', [
    (0, '0.0 s'), (1.234, '1.2 s'), (12.4, '12 s'), (59.6, '1 min 00 s'), (245, '4 min 05 s'),
    (3599, '59 min 59 s'), (3725, '1 h 02 min'), ('30.7', '31 s'), (None, '?'), ('abc', '?'), (-1, '?'),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_timeline_svg_from_csv():
    svg = timeline_svg('time,primary,secondary\n1795600000,1,0\n1795600010,0,1\n', [])
    assert svg.startswith('<svg') and '<polyline' in svg


def test_timeline_svg_bad_csv_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match='header'):
        timeline_svg('1,2\n')
