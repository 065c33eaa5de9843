#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: maintenance_lock
short_description: Take, check or release the maintenance lock for one run of a playbook
version_added: "0.2.0"
description:
  - Runs with the Kamailio proxy as the task host. The maintenance lock (C(maintenance.lock) in O(state_dir))
    makes the HA check, C(wazo-mode) and other runs keep their hands off while one operation works on the system.
  - An action plugin runs first on the controller. It names this run (a run id, C(user@controller), the
    controller's C(ansible-playbook) process and its start time), reads the lock, and decides as follows.
  - V(present) with the lock free takes it, written with that identity. Held by this run, nothing changes.
  - Held by another run of the same O(owner) on this controller whose process is gone (it failed or was
    killed), this run takes it over and says so in a warning (a rerun resumes).
  - Held by another run that is still running, by a run of another controller (its process cannot be checked
    from here), or by another owner (C(wazo-mode), an operator), the task fails before any change and says who
    holds the lock and since when. A run of another controller is taken over only when O(takeover) names it.
  - A lock written by an earlier version of this collection (the owner alone, no run id) is taken over.
  - V(absent) releases the lock of this run (or one without a run id); V(read) only reports.
  - Taking and taking over happen under an C(flock) of O(state_dir); of two runs racing for a free lock, one
    takes it and the other is refused.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  state:
    description: V(present) takes the lock for this run, V(absent) releases it, V(read) reports it and the verdict.
    type: str
    choices: [present, absent, read]
    default: present
  owner:
    description: The owner name written in the lock (for example V(upgrade.yml)).
    type: str
    default: ansible
  reason:
    description: The reason written in the lock.
    type: str
    default: ''
  takeover:
    description:
      - The run id of another controller's run whose lock this run may take over (shown in the refusal).
        Only when that run is known to be over.
    type: str
    default: ''
  run_identity:
    description: Set by the action plugin (this run's identity); never set it in a task.
    type: dict
  replace_run:
    description: Set by the action plugin (the run id of the lock judged dead); never set it in a task.
    type: str
  state_dir:
    description: Directory holding C(maintenance.lock).
    type: path
    default: /var/lib/wazo-maintenance
attributes:
  check_mode:
    support: full
    description: Reads the lock and reports the verdict (take, take over, refuse); changes nothing.
  diff_mode:
    support: full
    description: The lock before and after.
  platform:
    support: full
    platforms: posix
    description: The module runs on the proxy; the action plugin on a Linux controller (C(/proc)).
notes:
  - The lock file stays readable by older readers (C({owner, reason, since}) plus the identity keys).
seealso:
  - module: wazo.maintenance_mode.kamailio_mode
'''

EXAMPLES = r'''
- name: One upgrade at a time (first task of the run)
  wazo.maintenance_mode.maintenance_lock:
    owner: upgrade.yml
    reason: upgrade.yml run
    takeover: "{{ wazo_mm_upgrade_lock_takeover }}"

- name: Release it at the end
  wazo.maintenance_mode.maintenance_lock:
    state: absent
    owner: upgrade.yml
'''

RETURN = r'''
lock:
  description: The lock after the task (C(owner), C(reason), C(since), and C(run), C(user), C(host), C(pid), C(pid_start) when written by a run), or null.
  returned: success
  type: dict
  sample: {owner: upgrade.yml, reason: upgrade.yml run, since: "2026-12-02T03:00:00Z", run: 3f2a9c01bd, user: root,
           host: ctl, pid: 4242, pid_start: "1c2d3e4f:123456"}
previous_lock:
  description: The lock before the task, or null.
  returned: success
  type: dict
verdict:
  description:
    - What the action plugin decided, C(free), C(ours), C(stale) (a dead run of this controller), C(legacy),
      C(takeover) (take or take over), C(live), C(foreign), C(other) (refused).
  returned: always
  type: str
  sample: free
run:
  description: This run's identity.
  returned: always
  type: dict
'''

import json
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.maintenance_lock import (
    DEFAULT_STATE_DIR,
    LockHeld,
    read_lock,
    release_lock,
    take_lock,
)


def _text(lock):
    return (json.dumps(lock, indent=1, sort_keys=True) if lock else 'none') + '\n'


def run_module(module):
    p = module.params
    state_dir = p['state_dir']
    before = read_lock(state_dir)
    me = p['run_identity'] or {}
    result = dict(changed=False, previous_lock=before, lock=before)
    if p['state'] == 'read':
        return result
    if p['state'] == 'present':
        if before is not None and before.get('owner') == p['owner'] and me.get('run') and before.get('run') == me['run']:
            return result
        if before is not None and p['replace_run'] is None:
            raise LockHeld(before)
        if before is not None and (before.get('run') or '') != p['replace_run']:
            raise LockHeld(before, 'it changed since it was read')
        after = dict(owner=p['owner'], reason=p['reason'], since='(now)', **me)
        result.update(changed=True, lock=after)
        if not module.check_mode:
            take_lock(p['owner'], p['reason'], state_dir, identity=me,
                      takeover=p['replace_run'] if before is not None else None)
            result['lock'] = read_lock(state_dir)
    else:
        if before is None:
            return result
        if before.get('owner') != p['owner'] or before.get('run') not in (None, me.get('run')):
            raise LockHeld(before, 'not released by %s run %s' % (p['owner'], me.get('run') or '?'))
        result.update(changed=True, lock=None)
        if not module.check_mode:
            release_lock(p['owner'], state_dir, run=me.get('run'))
    if module._diff:
        result['diff'] = dict(before_header='maintenance lock', after_header='maintenance lock',
                              before=_text(before), after=_text(result['lock']))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent', 'read'], default='present'),
            owner=dict(type='str', default='ansible'),
            reason=dict(type='str', default=''),
            takeover=dict(type='str', default=''),
            run_identity=dict(type='dict'),
            replace_run=dict(type='str'),
            state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_module(module)
    except LockHeld as exc:
        module.fail_json(msg='refused before any change: %s' % exc, lock=exc.lock)
    except (IOError, OSError) as exc:
        module.fail_json(msg='maintenance lock in %s: %s' % (module.params['state_dir'], exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
