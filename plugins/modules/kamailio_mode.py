#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: kamailio_mode
short_description: Read or switch the route mode of the Wazo Kamailio proxy
version_added: "0.1.0"
description:
  - Runs on the proxy. Reads, and optionally sets, the route mode of the Kamailio configured by the
    C(wazo.maintenance_mode.kamailio_proxy) role, C(normal) (new calls to the primary stack,
    C($shv(routemode)=0)) or C(maintenance) (to the secondary stack, C($shv(routemode)=2)).
  - A change is written to the persisted file C(routemode.cfg) in O(state_dir) first (Kamailio
    includes it, so a restart keeps the mode), then applied to the running Kamailio over its JSON-RPC
    interface (C(pv.shvSet)), then read back from both; the module fails if they do not match.
  - Without O(mode) it only reads. It fails clearly when Kamailio does not answer on its RPC socket or
    does not run this collection's configuration (no C($shv(routemode))).
  - Optionally takes or releases the maintenance lock (C(maintenance.lock) in O(state_dir)), which
    stops the HA check from failing over or back while an operator works.
  - Calls set up before a switch stay on their stack until they end (record-routed dialogs); use
    M(wazo.maintenance_mode.wait_for_drain) to wait for them.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  mode:
    description:
      - The route mode to set. Omit it to only read the current mode.
    type: str
    choices: [normal, maintenance]
  lock:
    description:
      - V(true) takes the maintenance lock for O(lock_owner) (before switching); V(false) releases it
        (after switching). Omit it to leave the lock alone.
      - Taking a lock another owner holds fails; so does releasing it, unless O(lock_force=true).
    type: bool
  lock_owner:
    description: Owner name written in the lock.
    type: str
    default: ansible
  lock_reason:
    description: Reason written in the lock.
    type: str
    default: ''
  lock_force:
    description: Release the lock even if another owner holds it.
    type: bool
    default: false
  rpc_transport:
    description: The Kamailio jsonrpcs transport to use.
    type: str
    choices: [dgram, fifo]
    default: dgram
  rpc_path:
    description:
      - Path of the jsonrpcs datagram socket or FIFO.
      - Default C(/run/kamailio/kamailio_rpc.sock) (dgram) or C(/run/kamailio/kamailio_rpc.fifo) (fifo).
    type: path
  rpc_timeout:
    description: Seconds to wait for each RPC reply.
    type: float
    default: 3.0
  state_dir:
    description: Directory holding C(routemode.cfg) and C(maintenance.lock).
    type: path
    default: /var/lib/wazo-maintenance
attributes:
  check_mode:
    support: full
    description: Reads the running and persisted mode, reports what would change, changes nothing.
  diff_mode:
    support: full
    description: Shows the route mode (running and persisted) and the lock before and after.
  platform:
    support: full
    platforms: posix
    description: Runs on the Kamailio proxy (Linux).
notes:
  - Speaks JSON-RPC to Kamailio directly; never relies on C(kamcmd)/C(kamctl), which exit 0 on errors.
seealso:
  - module: wazo.maintenance_mode.wait_for_drain
'''

EXAMPLES = r'''
- name: Send new calls to the secondary, keep the HA check quiet meanwhile
  wazo.maintenance_mode.kamailio_mode:
    mode: maintenance
    lock: true
    lock_owner: upgrade.yml
    lock_reason: upgrading the primary

- name: Back to normal and release the lock
  wazo.maintenance_mode.kamailio_mode:
    mode: normal
    lock: false
    lock_owner: upgrade.yml

- name: Read the route mode
  wazo.maintenance_mode.kamailio_mode:
  register: route

- name: Talk to a Kamailio on its FIFO
  wazo.maintenance_mode.kamailio_mode:
    rpc_transport: fifo
    rpc_path: /run/kamailio/kamailio_rpc.fifo
'''

RETURN = r'''
previous_mode:
  description: The running route mode before the task.
  returned: success
  type: str
  sample: normal
mode:
  description: The running route mode after the task (in check mode, what it would be).
  returned: success
  type: str
  sample: maintenance
persisted_mode:
  description: The mode in C(routemode.cfg) after the task; null if that file does not exist.
  returned: success
  type: str
  sample: maintenance
lock:
  description: The maintenance lock after the task (C(owner), C(reason), C(since)), or null.
  returned: success
  type: dict
  sample: {owner: upgrade.yml, reason: upgrading the primary, since: "2026-11-25T10:00:00Z"}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import KamailioError, KamailioRPC
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.maintenance_lock import (
    LockHeld,
    read_lock,
    release_lock,
    take_lock,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.route_mode import (
    DEFAULT_STATE_DIR,
    read_persisted_mode,
    running_mode,
    switch,
)


def _state_text(running, persisted, lock):
    lines = ['mode: %s' % running, 'persisted_mode: %s' % persisted]
    if lock:
        lines.append('lock: %s (%s) since %s' % (lock.get('owner'), lock.get('reason'), lock.get('since')))
    else:
        lines.append('lock: none')
    return '\n'.join(lines) + '\n'


def run_module(module):
    p = module.params
    state_dir = p['state_dir']
    rpc = KamailioRPC(transport=p['rpc_transport'], path=p['rpc_path'], timeout=p['rpc_timeout'])

    previous = running_mode(rpc)
    persisted = read_persisted_mode(state_dir)
    lock = read_lock(state_dir)
    want = p['mode']

    mode_change = want is not None and (previous != want or persisted != want)
    lock_take = lock_release = False
    if p['lock'] is True:
        if lock is None:
            lock_take = True
        elif lock.get('owner') != p['lock_owner']:
            module.fail_json(msg=str(LockHeld(lock)), previous_mode=previous, mode=previous,
                             persisted_mode=persisted, lock=lock)
    elif p['lock'] is False and lock is not None:
        if lock.get('owner') != p['lock_owner'] and not p['lock_force']:
            module.fail_json(msg='%s; not releasing it for %s (lock_force=true to override)'
                             % (LockHeld(lock), p['lock_owner']),
                             previous_mode=previous, mode=previous, persisted_mode=persisted, lock=lock)
        lock_release = True

    changed = mode_change or lock_take or lock_release
    after_mode = want if want is not None else previous
    after_persisted = want if want is not None else persisted
    after_lock = lock
    if lock_take:
        after_lock = {'owner': p['lock_owner'], 'reason': p['lock_reason'], 'since': '(now)'}
    elif lock_release:
        after_lock = None

    result = dict(changed=changed, previous_mode=previous, mode=after_mode, persisted_mode=after_persisted,
                  lock=after_lock)
    if module._diff:
        result['diff'] = dict(before_header='route mode', after_header='route mode',
                              before=_state_text(previous, persisted, lock),
                              after=_state_text(after_mode, after_persisted, after_lock))
    if module.check_mode or not changed:
        if not changed:
            result['lock'] = lock
        return result

    # Lock first when taking it (the HA check must not fail back in between) ...
    if lock_take:
        take_lock(p['lock_owner'], p['lock_reason'], state_dir)
    if mode_change:
        switch(rpc, want, state_dir)
    # ... and release it last.
    if lock_release:
        release_lock(p['lock_owner'], state_dir, force=p['lock_force'])

    running = running_mode(rpc)
    persisted = read_persisted_mode(state_dir)
    result.update(mode=running, persisted_mode=persisted, lock=read_lock(state_dir))
    if want is not None and (running != want or persisted != want):
        module.fail_json(msg='route mode set to %s but Kamailio runs %s and %s holds %s'
                         % (want, running, state_dir, persisted), **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type='str', choices=['normal', 'maintenance']),
            lock=dict(type='bool'),
            lock_owner=dict(type='str', default='ansible'),
            lock_reason=dict(type='str', default=''),
            lock_force=dict(type='bool', default=False),
            rpc_transport=dict(type='str', choices=['dgram', 'fifo'], default='dgram'),
            rpc_path=dict(type='path'),
            rpc_timeout=dict(type='float', default=3.0),
            state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_module(module)
    except (KamailioError, LockHeld) as exc:
        module.fail_json(msg='Kamailio route mode: %s' % exc, exception=traceback.format_exc())
    except (IOError, OSError) as exc:
        module.fail_json(msg='Kamailio route mode: %s' % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
