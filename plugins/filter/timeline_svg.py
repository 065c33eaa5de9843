# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: timeline_svg
short_description: Draw the upgrade's timeline (calls per stack over time, steps marked) as an SVG picture
version_added: 0.1.0
description:
  - From call samples measured while C(upgrade.yml) ran (CSV text, header C(time,<stack>,...), C(time) in seconds
    since the epoch) and the report's steps, returns a self-contained SVG document.
  - Used by the C(wazo.maintenance_mode.upgrade) role's report when O(_input) is given (C(wazo_mm_upgrade_calls_samples)).
  - The drawing is in C(plugins/module_utils/timeline_svg.py).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input, steps
options:
  _input:
    description: The samples as CSV text.
    type: str
    required: true
  steps:
    description: The report's steps, each with C(step) (name) and C(ended) (ISO 8601 UTC time).
    type: list
    elements: dict
    default: []
  title:
    description: The picture's title.
    type: str
    default: Calls per stack during the upgrade
'''

EXAMPLES = r'''
- name: Write the timeline beside the report
  ansible.builtin.copy:
    content: "{{ lookup('ansible.builtin.file', 'calls.csv') | wazo.maintenance_mode.timeline_svg(wazo_mm_upgrade_steps) }}"
    dest: reports/upgrade-timeline.svg
    mode: "0644"
  delegate_to: localhost
'''

RETURN = r'''
_value:
  description: The SVG document.
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.timeline_svg import parse_csv, render


def timeline_svg(samples, steps=None, title='Calls per stack during the upgrade'):
    try:
        names, rows = parse_csv(samples)
    except ValueError as exc:
        raise AnsibleFilterError('timeline_svg: %s' % exc)
    return render(names, rows, steps or [], title=title)


class FilterModule(object):
    def filters(self):
        return {'timeline_svg': timeline_svg}
