# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: fleet_gate
short_description: Whether a site may start its next batch, given the sites failed so far
version_added: 0.2.0
description:
  - Used by the fleet role's gate. Returns C({start, why}); C(start) is false once the share of failed sites
    of the run is above O(max_failed_percent).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input, total, max_failed_percent
options:
  _input:
    description: Site -> its fleet record (C(wazo_mm_site_result)) or null.
    type: dict
    required: true
  total:
    description: The number of sites in the run.
    type: int
    required: true
  max_failed_percent:
    description: The failed share, in percent, above which no batch starts.
    type: float
    required: true
'''

EXAMPLES = r'''
- name: May this batch start?
  ansible.builtin.debug:
    msg: "{{ {'paris': {'result': 'failed'}, 'lyon': none} | wazo.maintenance_mode.fleet_gate(2, 0) }}"
'''

RETURN = r'''
_value:
  description: C(start) (bool) and C(why) (text, empty when it may start).
  type: dict
'''

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.fleet import gate


def fleet_gate(records, total, max_failed_percent):
    start, why = gate(dict(records or {}), total, max_failed_percent)
    return {'start': start, 'why': why}


class FilterModule(object):
    def filters(self):
        return {'fleet_gate': fleet_gate}
