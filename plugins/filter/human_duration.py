# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: human_duration
short_description: A number of seconds as a person writes it (C(4 min 05 s), C(1 h 02 min), C(12.3 s))
version_added: 0.1.0
description:
  - Used by the upgrade report so that durations read like a person wrote them.
  - Under a minute, seconds with one decimal below 10 s; under an hour, minutes and seconds; else hours and minutes.
  - V(null) or a value that is not a number gives C(?).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input
options:
  _input:
    description: Seconds.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Say how long the drain took
  ansible.builtin.debug:
    msg: "drained in {{ 245 | wazo.maintenance_mode.human_duration }}"  # drained in 4 min 05 s
'''

RETURN = r'''
_value:
  description: The duration as text.
  type: str
'''


def human_duration(seconds):
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return '?'
    if value < 0:
        return '?'
    if value < 10:
        return '%.1f s' % value
    total = int(round(value))
    if total < 60:
        return '%d s' % total
    if total < 3600:
        return '%d min %02d s' % (total // 60, total % 60)
    return '%d h %02d min' % (total // 3600, (total % 3600) // 60)


class FilterModule(object):
    def filters(self):
        return {'human_duration': human_duration}
