# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: fleet_report
short_description: The fleet report, one line per site (result, versions, time in maintenance, calls drained)
version_added: 0.2.0
description:
  - Used by the fleet role's report. The input lists the sites in order, each with its fleet record, the upgrade
    role's report when the site got that far, and the versions read by the run.
  - With O(format=text), a table and each failure's reason; else the list of lines.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input
options:
  _input:
    description: A list of C({site, record, report, versions}).
    type: list
    elements: dict
    required: true
  format:
    description: C(lines) or C(text).
    type: str
    default: lines
'''

EXAMPLES = r'''
- name: Print the fleet report
  ansible.builtin.debug:
    msg: "{{ [{'site': 'paris', 'record': none, 'report': {}, 'versions': {}}] | wazo.maintenance_mode.fleet_report(format='text') }}"
'''

RETURN = r'''
_value:
  description: The lines (site, result, before, after, maintenance_seconds, calls_drained, drain, step, reason, seconds) or the text.
  type: raw
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.fleet import render, site_line


def fleet_report(sites, format='lines'):  # pylint: disable=redefined-builtin
    if format not in ('lines', 'text'):
        raise AnsibleFilterError('fleet_report: format must be lines or text')
    lines = []
    for item in sites or []:
        if isinstance(item, dict) and 'result' in item and 'record' not in item:
            lines.append(item)  # already a line
            continue
        lines.append(site_line(item['site'], item.get('record'), item.get('report'), item.get('versions')))
    return render(lines) if format == 'text' else lines


class FilterModule(object):
    def filters(self):
        return {'fleet_report': fleet_report}
