# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: status_report
short_description: The operator's status of the system (route, lock, HA check, versions, calls, links) and what blocks an upgrade
version_added: 0.2.0
description:
  - Builds the status document of C(playbooks/status.yml) from what M(wazo.maintenance_mode.proxy_status),
    M(wazo.maintenance_mode.stack_status) and M(wazo.maintenance_mode.wazo_upgrade) (check mode) read, with
    the blockers of an upgrade and what to do about each; returns it, or renders it as a text table or JSON.
  - The rules and the renderings are in C(plugins/module_utils/status_report.py).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input, stacks
options:
  _input:
    description: The proxy's M(wazo.maintenance_mode.proxy_status) result (C(unreachable) true when the proxy did not answer).
    type: dict
    required: true
  stacks:
    description:
      - Omitted (or V(null)), O(_input) is a document this filter built, rendered as O(format) says.
      - Per stack (C(primary), C(secondary)), C(host), C(status) (the M(wazo.maintenance_mode.stack_status) result) and
        C(version) (the M(wazo.maintenance_mode.wazo_upgrade) check-mode result). A result may say C(unreachable) or C(failed).
    type: dict
  format:
    description: V(doc) returns the document, V(table) the text table, V(json) the document as JSON text.
    type: str
    choices: [doc, table, json]
    default: doc
'''

EXAMPLES = r'''
- name: Build the status document once
  ansible.builtin.set_fact:
    status: "{{ proxy_result | wazo.maintenance_mode.status_report(stacks) }}"

- name: Show it as a table
  ansible.builtin.debug:
    msg: "{{ status | wazo.maintenance_mode.status_report(format='table') }}"
'''

RETURN = r'''
_value:
  description: The document (C(route), C(ha_check), C(stacks), C(replication), C(blockers), C(upgrade_possible)), or its rendering.
  type: raw
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.status_report import (
    build,
    render_json,
    render_table,
)


def status_report(proxy, stacks=None, format='doc'):  # pylint: disable=redefined-builtin
    """The status document, or its ``table`` / ``json`` rendering; without ``stacks``, ``proxy`` is a built document."""
    if format not in ('doc', 'table', 'json'):
        raise AnsibleFilterError('status_report: format must be doc, table or json, not %r' % (format,))
    if stacks is None:
        if not isinstance(proxy, dict) or 'blockers' not in proxy:
            raise AnsibleFilterError('status_report: without stacks, the input must be a document built by this filter')
        doc = proxy
    else:
        doc = build(proxy, stacks)
    if format == 'table':
        return render_table(doc)
    if format == 'json':
        return render_json(doc)
    return doc


class FilterModule(object):
    """The status playbook's report."""

    def filters(self):
        return {'status_report': status_report}
