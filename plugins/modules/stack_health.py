#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: stack_health
short_description: The health gate before traffic goes to a Wazo stack
version_added: "0.2.0"
description:
  - Runs with the Kamailio proxy as the task host, before any switch of the route mode to O(stack). Passes only
    when, in the same sample, the stack answers SIP C(OPTIONS) from the proxy with C(200), C(wazo-service status)
    on it reports every service running (minus O(ignore_services)), and its firewall has no rule dropping or
    rejecting udp/5060 from any source (C(iptables -S) of the filter table, INPUT and user chains, and
    C(nft list ruleset) outside iptables-nft's own tables). A rule limited to some sources does not count.
  - The stack's side is read over SSH from the proxy (paramiko, the stack's host key must be known, as for
    M(wazo.maintenance_mode.wait_for_drain)) with one command.
  - Samples every O(interval) seconds until healthy or O(timeout); then fails with the stack, what failed
    and what to do. Changes nothing, the same in check mode.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  stack:
    description: The stack's name in messages (its inventory name).
    type: str
    required: true
  address:
    description: The stack's address (SIP OPTIONS to it, SSH to it).
    type: str
    required: true
  sip_port:
    description: UDP port of the stack's SIP.
    type: int
    default: 5060
  ignore_services:
    description: Services stopped on purpose on this stack (for example V(wazo-provd) on the secondary).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for the stack to become healthy. V(0) samples once.
    type: float
    default: 30
  interval:
    description: Seconds between two samples.
    type: float
    default: 2
  ssh_user:
    description: User on the stack.
    type: str
    default: root
  ssh_key:
    description: Private key on the proxy.
    type: path
    default: /root/.ssh/id_ed25519
  ssh_port:
    description: SSH port of the stack.
    type: int
    default: 22
  ssh_timeout:
    description: Seconds for the SSH connection and the command.
    type: float
    default: 10
  ssh_known_hosts:
    description: A known_hosts file to trust instead of the user's (the stack's key must be in it).
    type: path
attributes:
  check_mode:
    support: full
    description: Read-only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: posix
    description: Runs on the proxy; the stack is a Wazo stack (C(wazo-service), C(iptables) or C(nft)).
requirements:
  - paramiko on the proxy.
seealso:
  - module: wazo.maintenance_mode.sip_ping
  - module: wazo.maintenance_mode.kamailio_mode
'''

EXAMPLES = r'''
- name: Health gate before new calls go to the secondary
  wazo.maintenance_mode.stack_health:
    stack: secondary
    address: 192.0.2.12
    ignore_services: [wazo-provd]
'''

RETURN = r'''
healthy:
  description: The stack passed the gate.
  returned: always
  type: bool
problems:
  description: What failed in the last sample (empty when healthy).
  returned: always
  type: list
  elements: str
  sample: ["wazo-service status: stopped (rc=1), wazo-chatd stopped"]
details:
  description: The last sample - C(sip) (C(status_code), C(reason)), C(services_status), C(services_down), C(firewall_rules).
  returned: always
  type: dict
samples:
  description: Number of samples taken.
  returned: always
  type: int
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import ping
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_health import (
    REMOTE_COMMAND,
    advice,
    evaluate,
    split_sections,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_ssh import (
    StackSSHError,
    ssh_common_argument_spec,
    ssh_options,
    ssh_run,
)


def sample(params):
    """One sample: ``(problems, details)``."""
    try:
        code, reason, _attempts, _elapsed = ping(params['address'], params['sip_port'], timeout=3.0, interval=0.5)
    except (OSError, ValueError) as exc:
        code, reason = None, str(exc)
    try:
        _rc, out, _err = ssh_run(params['address'], REMOTE_COMMAND, **ssh_options(params))
        sections = split_sections(out)
        ssh_problem = None
    except StackSSHError as exc:
        sections, ssh_problem = None, 'cannot read its services and firewall: %s' % exc
    problems, details = evaluate(sections, (code, reason), params['ignore_services'])
    if ssh_problem:
        problems.append(ssh_problem)
    return problems, details


def main():
    spec = dict(
        stack=dict(type='str', required=True),
        address=dict(type='str', required=True),
        sip_port=dict(type='int', default=5060),
        ignore_services=dict(type='list', elements='str', default=[]),
        timeout=dict(type='float', default=30),
        interval=dict(type='float', default=2),
    )
    spec.update(ssh_common_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    deadline = time.monotonic() + max(0.0, p['timeout'])
    count = 0
    # Bounded in time (deadline) and in number (each sample lasts at least interval or 0.5 s).
    for count in range(1, int(max(0.0, p['timeout']) / max(0.5, p['interval'])) + 2):
        problems, details = sample(p)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(max(0.5, p['interval']))
    result = dict(changed=False, healthy=not problems, problems=problems, details=details, samples=count)
    if problems:
        module.fail_json(msg='%s (%s) is not healthy: %s. Fix: %s.'
                         % (p['stack'], p['address'], '; '.join(problems), advice(problems)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
