#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: wait_for_drain
short_description: Wait until a Wazo stack has no call left
version_added: "0.1.0"
description:
  - Runs with the Kamailio proxy as the task host. Waits until B(both) the proxy's live dialogs through
    the stack (dialog profile C(backend), value = the stack's dispatcher set) B(and) the stack's Asterisk
    channels (C(asterisk -rx 'core show channels count') over SSH from the proxy, with paramiko) are at
    most O(max_remaining_calls).
  - Kamailio's count alone misses calls that do not cross the proxy and is lost when Kamailio restarts;
    Asterisk's alone does not see a call still being set up through the proxy. Hence both.
  - An action plugin resolves the stack's address and its dispatcher set (primary = 1, secondary = 2) from
    C(wazo_mm_topology), which the preflight role exports, then runs the module on the proxy in
    slices of at most O(slice) seconds, printing the calls left per source between slices.
  - Fails after O(timeout) seconds, reporting what is left.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  stack:
    description: Inventory host name of the stack to drain.
    type: str
    required: true
  timeout:
    description: Seconds to wait in all before failing.
    type: float
    default: 600
  poll_interval:
    description: Seconds between two samples.
    type: float
    default: 0.5
  max_remaining_calls:
    description: Consider the stack drained when both counts are at most this.
    type: int
    default: 0
  slice:
    description: Longest run of the module on the proxy between two progress reports (seconds).
    type: float
    default: 10
  setid:
    description:
      - Dispatcher set of the stack. Default 1 if O(stack) is the primary of C(wazo_mm_topology), 2 if the secondary.
    type: int
  stack_address:
    description:
      - Address to reach the stack over SSH. Default its address in C(wazo_mm_topology).
    type: str
  check_asterisk:
    description: Also count the stack's Asterisk channels over SSH (turn off only when no Asterisk runs).
    type: bool
    default: true
  asterisk_command:
    description: Command run on the stack; its output is parsed as C(core show channels count).
    type: str
    default: asterisk -rx 'core show channels count'
  ssh_user:
    description: User the proxy logs in as on the stack.
    type: str
    default: root
  ssh_key:
    description: Private key of the proxy for the stacks.
    type: path
    default: /root/.ssh/id_ed25519
  ssh_port:
    description: SSH port of the stack.
    type: int
    default: 22
  ssh_timeout:
    description: Seconds for the SSH connection and command.
    type: float
    default: 10
  ssh_known_hosts:
    description:
      - Known-hosts file the stack's host key must be in (default root's C(~/.ssh/known_hosts), where the
        ssh_trust role records both stacks' keys). An unknown or changed host key is always refused.
    type: path
  rpc_transport:
    description: The Kamailio jsonrpcs transport.
    type: str
    choices: [dgram, fifo]
    default: dgram
  rpc_path:
    description: The jsonrpcs datagram socket or FIFO (default C(/run/kamailio/kamailio_rpc.sock) / C(.fifo)).
    type: path
  rpc_timeout:
    description: Seconds to wait for each RPC reply.
    type: float
    default: 3.0
  slice_timeout:
    description: Internal, set by the action plugin. Seconds this module run may poll.
    type: float
    default: 10
attributes:
  action:
    support: full
    description: The action plugin loops over module runs and reports progress on the controller.
  check_mode:
    support: full
    description: Takes one sample and does not wait.
  diff_mode:
    support: none
    description: Nothing to compare; it only waits.
  platform:
    support: full
    platforms: posix
    description: Runs on the Kamailio proxy (Linux).
requirements:
  - paramiko on the proxy (the kamailio_proxy role installs python3-paramiko)
seealso:
  - module: wazo.maintenance_mode.kamailio_mode
'''

EXAMPLES = r'''
- name: Wait for the primary to have no call left (the proxy runs the task)
  wazo.maintenance_mode.wait_for_drain:
    stack: "{{ wazo_mm_topology.primary.host }}"
    timeout: 1800
  delegate_to: "{{ wazo_mm_topology.proxy.host }}"

- name: Accept two calls left after ten minutes
  wazo.maintenance_mode.wait_for_drain:
    stack: wazo2.example.com
    timeout: 600
    max_remaining_calls: 2
'''

RETURN = r'''
drained:
  description: Whether both counts reached O(max_remaining_calls) or fewer.
  returned: always
  type: bool
waited:
  description: Seconds waited.
  returned: always
  type: float
  sample: 12.5
samples:
  description: The samples taken, oldest first; C(asterisk) is null when O(check_asterisk=false).
  returned: always
  type: list
  elements: dict
  sample: [{time: 1795600000.123, kamailio: 2, asterisk: 3}, {time: 1795600000.625, kamailio: 0, asterisk: 0}]
remaining:
  description: The last sample's counts.
  returned: always
  type: dict
  sample: {kamailio: 0, asterisk: 0}
stack:
  description: The stack, its address and its dispatcher set.
  returned: always
  type: dict
  sample: {name: wazo1.example.com, address: 192.0.2.11, setid: 1}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.drain import (
    CHANNELS_COUNT_CMD,
    DrainError,
    asterisk_channels,
    sample,
    wait_drained,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import KamailioError, KamailioRPC
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_ssh import (
    StackSSHError,
    ssh_common_argument_spec,
    ssh_options,
    ssh_run,
)


def poll(p, rpc, check_mode=False, runner=ssh_run, **clocks):
    """Sample until drained or the slice ends (one sample in check mode)."""
    def run(host, command):
        return runner(host, command, **ssh_options(p))

    def channels():
        return asterisk_channels(run, p['stack_address'], p['asterisk_command'])

    res = wait_drained(lambda: sample(rpc, p['setid'], channels if p['check_asterisk'] else None),
                       timeout=p['slice_timeout'], interval=p['poll_interval'], limit=p['max_remaining_calls'],
                       once=check_mode, **clocks)
    res.update(changed=False, stack={'name': p['stack'], 'address': p['stack_address'], 'setid': p['setid']})
    return res


def argument_spec():
    spec = dict(
        stack=dict(type='str', required=True),
        timeout=dict(type='float', default=600),
        poll_interval=dict(type='float', default=0.5),
        max_remaining_calls=dict(type='int', default=0),
        slice=dict(type='float', default=10),
        setid=dict(type='int'),
        stack_address=dict(type='str'),
        check_asterisk=dict(type='bool', default=True),
        asterisk_command=dict(type='str', default=CHANNELS_COUNT_CMD),
        rpc_transport=dict(type='str', choices=['dgram', 'fifo'], default='dgram'),
        rpc_path=dict(type='path'),
        rpc_timeout=dict(type='float', default=3.0),
        slice_timeout=dict(type='float', default=10),
    )
    spec.update(ssh_common_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    if p['setid'] is None or not p['stack_address']:
        module.fail_json(msg='wait_for_drain: setid and stack_address are resolved by the action plugin; '
                             'give them explicitly when the stack is in neither group primary nor secondary')
    rpc = KamailioRPC(p['rpc_transport'], p['rpc_path'], p['rpc_timeout'])
    try:
        result = poll(p, rpc, module.check_mode)
    except (KamailioError, DrainError, StackSSHError) as exc:
        module.fail_json(msg='wait_for_drain %s: %s' % (p['stack'], exc), exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
