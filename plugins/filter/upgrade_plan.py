# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: upgrade_plan
short_description: Decide what upgrade.yml does (full, resume, finish, none) or why it refuses
version_added: 0.1.0
description:
  - From what the C(wazo.maintenance_mode.upgrade) role reads before any change, decides the action of
    the run and the reasons to refuse it. Changes nothing; used by C(roles/upgrade/tasks/plan.yml).
  - V(full) upgrades both stacks (steps 0-10). V(resume) continues a run stopped after the secondary was
    upgraded (no last sync across versions, the secondary is not upgraded again). V(finish) only runs the
    steps after both upgrades (back to normal, restore, replicate, report). V(none) does nothing.
  - Refused (RV(_value.errors) not empty) when the stacks run different versions and no upgrade of ours
    can resume, when they would upgrade to different versions, when the maintenance lock is held by
    another owner than O(lock_owner), or when a V(full) run finds the route mode is not V(normal).
    An abort (O(abort=true)) is never refused.
  - The decision table is in C(plugins/module_utils/upgrade_plan.py).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input, secondary
options:
  _input:
    description:
      - The primary's result of M(wazo.maintenance_mode.wazo_upgrade) in check mode
        (C(version_before), C(candidate), C(upgrade_available)).
    type: dict
    required: true
  secondary:
    description: The secondary's result of M(wazo.maintenance_mode.wazo_upgrade) in check mode.
    type: dict
    required: true
  state:
    description:
      - The saved state of an unfinished upgrade (C(upgrade-state.json) on the proxy), as a dict or as
        its JSON text (for example the decoded C(content) of M(ansible.builtin.slurp)).
      - V(null) or an empty dict when there is none. A text that is not a JSON object is an error.
    type: raw
  lock:
    description: The maintenance lock (C(owner), C(reason), C(since)) as M(wazo.maintenance_mode.kamailio_mode) returns it; V(null) when free.
    type: dict
  mode:
    description: The running route mode as M(wazo.maintenance_mode.kamailio_mode) returns it.
    type: str
    default: normal
  abort:
    description: The run only puts back what a failed run stopped (C(wazo_mm_upgrade_abort)); nothing is refused.
    type: bool
    default: false
  lock_owner:
    description: The lock owner the upgrade itself writes; a lock held by it does not refuse the run.
    type: str
    default: upgrade.yml
'''

EXAMPLES = r'''
- name: Read the versions on both stacks (check mode never upgrades)
  wazo.maintenance_mode.wazo_upgrade:
  check_mode: true
  delegate_to: "{{ item }}"
  loop: [primary, secondary]
  register: versions

- name: Read the route mode and the maintenance lock
  wazo.maintenance_mode.kamailio_mode:
  register: route

- name: Read the state of an unfinished upgrade
  ansible.builtin.slurp:
    src: /var/lib/wazo-maintenance/upgrade-state.json
  register: saved
  failed_when: false

- name: Decide what to do
  ansible.builtin.set_fact:
    plan: >-
      {{ versions.results[0] | wazo.maintenance_mode.upgrade_plan(
           versions.results[1],
           state=(saved.content | b64decode) if saved.content is defined else none,
           lock=route.lock, mode=route.mode, abort=false) }}

- name: Refuse what cannot be upgraded safely
  ansible.builtin.assert:
    that: plan.errors | length == 0
    fail_msg: "{{ plan.errors | join(' | ') }}"
'''

RETURN = r'''
_value:
  description: The plan.
  type: dict
  contains:
    action:
      description: What the run does.
      type: str
      choices: [full, resume, finish, none]
      sample: full
    errors:
      description: Why the run is refused before any change; empty when it may go on.
      type: list
      elements: str
      sample: ["the route mode is maintenance, not normal: traffic is not on the primary"]
    resuming:
      description: Whether a saved state of an unfinished run was found.
      type: bool
      sample: false
    state:
      description: That saved state (C(started), C(from), C(target)), or an empty dict.
      type: dict
      sample: {"started": "2026-01-10T02:00:01Z", "from": "24.05", "target": "25.03"}
    from:
      description: The versions installed now.
      type: dict
      sample: {"primary": "24.05", "secondary": "24.05"}
    target:
      description: The version the run upgrades to (the primary's apt candidate).
      type: str
      sample: "25.03"
    mode:
      description: The running route mode.
      type: str
      sample: normal
    lock:
      description: The maintenance lock, an empty dict when free.
      type: dict
      sample: {}
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.upgrade_plan import (
    DEFAULT_LOCK_OWNER,
    NORMAL_MODE,
    UpgradePlanError,
    decide,
    parse_state,
)


def upgrade_plan(primary, secondary, state=None, lock=None, mode=NORMAL_MODE, abort=False, lock_owner=DEFAULT_LOCK_OWNER):
    """The ``wazo_mm_upgrade_plan`` dict: see module_utils/upgrade_plan.py."""
    try:
        abort = boolean(abort, strict=True)
    except TypeError as exc:
        raise AnsibleFilterError('upgrade_plan: abort must be a boolean: %s' % exc)
    try:
        if state is not None and not isinstance(state, Mapping):
            state = parse_state(to_text(state, errors='surrogate_or_strict'))
        return decide(primary, secondary, state=state, lock=lock, mode=mode, abort=abort,
                      lock_owner=lock_owner)
    except UpgradePlanError as exc:
        raise AnsibleFilterError('upgrade_plan: %s' % exc)


class FilterModule(object):
    """The upgrade role's decision."""

    def filters(self):
        return {'upgrade_plan': upgrade_plan}
