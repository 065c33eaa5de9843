#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: proxy_status
short_description: Read the Wazo proxy's state - route mode, maintenance lock, dialogs per stack, HA check
version_added: "0.2.0"
description:
  - Runs on the Kamailio proxy. Reads, and changes nothing, takes no lock (the maintenance lock is read
    without its C(flock)).
  - The running route mode (Kamailio C($shv(routemode)) over JSON-RPC) and the persisted one (C(routemode.cfg) in
    O(state_dir), with the time it was last written, the last switch).
  - The maintenance lock (C(maintenance.lock)), the live dialogs through each stack (Kamailio's dialog profile
    C(backend) per dispatcher set, what M(wazo.maintenance_mode.wait_for_drain) counts) and the dispatcher
    destinations.
  - The HA check's state file (C(ha-check.json)), its unit's state and its last transitions from the journal.
  - An unfinished upgrade (C(upgrade-state.json)).
  - A part that cannot be read (Kamailio down, a missing file) is reported in the result, never a failure.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  rpc_transport:
    description: The Kamailio jsonrpcs transport to use.
    type: str
    choices: [dgram, fifo]
    default: dgram
  rpc_path:
    description:
      - Path of the jsonrpcs datagram socket or FIFO (default C(/run/kamailio/kamailio_rpc.sock) or C(.fifo)).
    type: path
  rpc_timeout:
    description: Seconds to wait for each RPC reply.
    type: float
    default: 3.0
  state_dir:
    description: Directory holding C(routemode.cfg), C(maintenance.lock), C(ha-check.json), C(upgrade-state.json).
    type: path
    default: /var/lib/wazo-maintenance
  ha_check_unit:
    description: The HA check's systemd unit.
    type: str
    default: wazo-ha-check.service
  journal_lines:
    description: How many of the HA check's last journal lines are searched for its transitions (V(0) reads none).
    type: int
    default: 3000
  transitions:
    description: How many of the last transitions (failover, failback, pause, primary down) are returned.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: posix
    description: Runs on the Kamailio proxy (Linux, systemd).
seealso:
  - module: wazo.maintenance_mode.kamailio_mode
  - module: wazo.maintenance_mode.stack_status
'''

EXAMPLES = r'''
- name: Read the proxy's state
  wazo.maintenance_mode.proxy_status:
  register: proxy

- name: Say who holds the lock
  ansible.builtin.debug:
    msg: "{{ proxy.lock.owner | default('nobody') }}"
'''

RETURN = r'''
mode:
  description: The running route mode (V(normal), V(maintenance)); null when Kamailio did not answer.
  returned: always
  type: str
  sample: normal
persisted_mode:
  description: The mode in C(routemode.cfg); null when that file does not exist.
  returned: always
  type: str
  sample: normal
persisted_mtime:
  description: When C(routemode.cfg) was last written (the last switch), UTC ISO time.
  returned: always
  type: str
  sample: "2026-12-02T03:00:00Z"
mode_error:
  description: Why the route mode could not be read, or null.
  returned: always
  type: str
lock:
  description: The maintenance lock (C(owner), C(reason), C(since), and the run's identity keys), or null.
  returned: always
  type: dict
  sample: {owner: wazo-mode, reason: wazo-mode maintenance, since: "2026-12-02T03:00:00Z"}
dialogs:
  description: Live dialogs through each stack (Kamailio dialog profile C(backend) of its dispatcher set).
  returned: always
  type: dict
  sample: {primary: 2, secondary: 0}
dispatcher:
  description: The dispatcher destinations (C(setid), C(uri), C(flags), C(active)).
  returned: always
  type: list
  elements: dict
ha_check:
  description: The HA check's state file (C(ha-check.json)), or null when it does not exist.
  returned: always
  type: dict
ha_check_unit:
  description: C(systemctl is-active) of the HA check's unit (V(active), V(inactive), V(failed), ...), null without systemd.
  returned: always
  type: str
  sample: active
ha_check_journal:
  description: The HA check's last transitions in its journal (C(at), C(message)), oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{at: "2026-12-02T03:00:01Z", message: "FAILOVER: route mode normal -> maintenance ..."}]
upgrade_state:
  description: An unfinished upgrade (C(upgrade-state.json) - C(started), C(from), C(target)), or null.
  returned: always
  type: dict
'''

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import KamailioError, KamailioRPC
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.maintenance_lock import read_lock
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.status_report import iso

# What the HA check logs on a transition or a change that matters (roles/ha_check/files/wazo_ha_check.py).
JOURNAL_MARKERS = ('FAILOVER', 'FAILBACK', 'HA check PAUSED', 'maintenance lock released', 'is DOWN',
                   'answers SIP again', 'unfinished', 'route mode changed', 'wazo-ha-check started',
                   'wazo-ha-check stopped')


def _read_json(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {'unreadable': 'not a JSON object'}
    except (IOError, OSError):
        return None
    except ValueError as exc:
        return {'unreadable': str(exc)}


def journal_transitions(text, keep):
    """``journalctl -o json`` lines -> the last ``keep`` HA check transitions ``[{at, message}]``."""
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = rec.get('MESSAGE')
        if not isinstance(msg, str) or not any(marker in msg for marker in JOURNAL_MARKERS):
            continue
        try:
            at = iso(int(rec.get('__REALTIME_TIMESTAMP')) / 1e6)
        except (TypeError, ValueError):
            at = None
        out.append({'at': at, 'message': msg[:400]})
    return out[-keep:] if keep > 0 else []


def run_module(module):
    p = module.params
    state_dir = p['state_dir']
    runner = CommandRunner(module)
    result = dict(changed=False, mode=None, persisted_mode=None, persisted_mtime=None, mode_error=None,
                  lock=None, dialogs={}, dispatcher=[], ha_check=None, ha_check_unit=None, ha_check_journal=[],
                  upgrade_state=None)
    rpc = KamailioRPC(transport=p['rpc_transport'], path=p['rpc_path'], timeout=p['rpc_timeout'])
    try:
        result['mode'] = route_mode.running_mode(rpc)
    except KamailioError as exc:
        result['mode_error'] = 'Kamailio: %s' % exc
    try:
        result['persisted_mode'] = route_mode.read_persisted_mode(state_dir)
    except (KamailioError, IOError, OSError) as exc:
        result['mode_error'] = (result['mode_error'] + '; ' if result['mode_error'] else '') + str(exc)
    result['persisted_mtime'] = iso(route_mode.persisted_mtime(state_dir))
    result['lock'] = read_lock(state_dir)
    if result['mode'] is not None:
        for stack, setid in sorted(route_mode.STACK_SET.items()):
            try:
                result['dialogs'][stack] = rpc.backend_calls(setid)
            except KamailioError as exc:
                result['dialogs'][stack] = None
                module.warn('dialogs of the %s (set %d): %s' % (stack, setid, exc))
        try:
            result['dispatcher'] = [dict((k, d[k]) for k in ('setid', 'uri', 'flags', 'active'))
                                    for d in rpc.dispatcher_list()]
        except KamailioError as exc:
            module.warn('dispatcher.list: %s' % exc)
    result['ha_check'] = _read_json(os.path.join(state_dir, 'ha-check.json'))
    result['upgrade_state'] = _read_json(os.path.join(state_dir, 'upgrade-state.json'))
    systemctl = module.get_bin_path('systemctl')
    if systemctl:
        res = runner.run([systemctl, 'is-active', p['ha_check_unit']], timeout=20)
        result['ha_check_unit'] = (res.out.strip().splitlines() or ['unknown'])[0]
    journalctl = module.get_bin_path('journalctl')
    if journalctl and p['journal_lines'] > 0:
        res = runner.run([journalctl, '-u', p['ha_check_unit'], '-o', 'json', '--no-pager',
                          '-n', str(p['journal_lines'])], timeout=30)
        result['ha_check_journal'] = journal_transitions(res.out, p['transitions'])
    result['read_at'] = iso(time.time())
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rpc_transport=dict(type='str', choices=['dgram', 'fifo'], default='dgram'),
            rpc_path=dict(type='path'),
            rpc_timeout=dict(type='float', default=3.0),
            state_dir=dict(type='path', default=route_mode.DEFAULT_STATE_DIR),
            ha_check_unit=dict(type='str', default='wazo-ha-check.service'),
            journal_lines=dict(type='int', default=3000),
            transitions=dict(type='int', default=5),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == '__main__':
    main()
