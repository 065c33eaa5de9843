#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: agent_reconcile
short_description: Make one Wazo stack's call-center agent logins those of the other stack
version_added: "0.2.0"
description:
  - Runs with the Kamailio proxy as the task host, where the C(agent_sync) role wrote the agent sync configuration
    (the stacks' addresses, the wazo-auth user and password, the CA file) in O(config).
  - Reads every agent's status on both stacks through wazo-agentd's REST API (a wazo-auth token, HTTPS verified
    against the configured CA), then on the destination (the stack that is not O(source)) logs in every agent
    logged in on the source (same extension and context), logs off every agent not logged in on the source, and
    logs again (logoff then login) an agent logged on another extension. Agents are matched by tenant and number;
    pauses are not copied. An agent that exists on one stack only is reported in RV(missing), never acted on.
  - A stack whose wazo-auth or wazo-agentd does not answer is retried O(retries) times, O(delay) seconds apart;
    then the task fails naming the stack and the reason (or, with O(fail_on_error=false), returns it in RV(error)
    with a warning). Never skipped silently.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  source:
    description: The stack whose logins are copied (the one that carried traffic); the other one is changed.
    type: str
    required: true
    choices: [primary, secondary]
  config:
    description: The agent sync configuration written by the C(agent_sync) role (INI, section C([agent-sync])).
    type: path
    default: /etc/wazo-maintenance/agent-sync.conf
  retries:
    description: Attempts when a stack does not answer (1 = no retry).
    type: int
    default: 3
  delay:
    description: Seconds between two attempts.
    type: float
    default: 5
  fail_on_error:
    description:
      - V(false) returns an unreachable stack or a login/logoff refused in RV(error) with a warning instead of
        failing the task (the caller reports it).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads both stacks and returns the actions it would make; changes nothing.
  diff_mode:
    support: full
    description: The destination's logins before and after (one C(tenant/number extension@context) line each).
  platform:
    support: full
    platforms: posix
    description: Runs on the proxy (standard library only); reaches both stacks over HTTPS.
notes:
  - The wazo-auth user needs only the ACLs C(agentd.agents.read), C(agentd.agents.by-number.*.login.create) and
    C(agentd.agents.by-number.*.logoff.create).
seealso:
  - module: wazo.maintenance_mode.kamailio_mode
'''

EXAMPLES = r'''
- name: Before the switch to maintenance, the secondary gets the primary's agent logins
  wazo.maintenance_mode.agent_reconcile:
    source: primary

- name: Before the switch back, the primary gets the logins made on the secondary during the window
  wazo.maintenance_mode.agent_reconcile:
    source: secondary
    fail_on_error: false
  register: agents_back
'''

RETURN = r'''
source:
  description: The stack whose logins were copied.
  returned: always
  type: str
  sample: primary
destination:
  description: The stack that was changed.
  returned: always
  type: str
  sample: secondary
reconciled:
  description:
    - One entry per action (C(action) login, logoff or relog, C(number), C(tenant_uuid), C(extension),
      C(context), C(was), C(ok), C(error)). In check mode, the actions that would be made.
  returned: always
  type: list
  elements: dict
agents:
  description: The actions in words, one line each (for reports).
  returned: always
  type: list
  elements: str
  sample: ["login 1001 on 1001@default"]
missing:
  description: Agents logged on one stack that do not exist on the other (C(number), C(tenant_uuid), C(on)).
  returned: always
  type: list
  elements: dict
error:
  description: Why the reconciliation did not complete (a stack unreachable, a login refused); empty when it did.
  returned: always
  type: str
attempts:
  description: How many times the stacks were read.
  returned: always
  type: int
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import agentd
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.agent_sync import OTHER, Config, ConfigError


def _lines(logins):
    return ''.join('%s/%s %s\n' % (k[0], k[1], v) for k, v in sorted(logins.items()))


def run_module(module, sleep=time.sleep):
    p = module.params
    src, dst = p['source'], OTHER[p['source']]
    result = dict(changed=False, source=src, destination=dst, reconciled=[], agents=[], missing=[], error='',
                  attempts=0)
    try:
        cfg = Config.load(p['config'])
        clients = dict((s, cfg.client(s)) for s in (src, dst))
    except (ConfigError, agentd.AgentdError) as exc:
        module.fail_json(msg='agent sync configuration: %s (is the agent_sync role applied to this proxy?)' % exc,
                         **result)
    outcome = None
    for attempt in range(1, max(1, p['retries']) + 1):
        result['attempts'] = attempt
        try:
            outcome = agentd.reconcile(clients[src], clients[dst], check=module.check_mode)
            break
        except agentd.AgentdError as exc:
            result['error'] = 'agentd of the %s unreachable after %d attempt(s): %s' % (exc.stack, attempt, exc)
            if attempt < p['retries']:
                sleep(p['delay'])
    if outcome is not None:
        result['error'] = ''
        result['reconciled'] = outcome['actions']
        result['agents'] = [agentd.describe(a) + ('' if a.get('ok', True) else ' FAILED: %s' % a['error'])
                            for a in outcome['actions']]
        result['missing'] = outcome['missing']
        result['changed'] = any(a.get('ok', True) for a in outcome['actions'])
        if outcome['failed']:
            result['error'] = 'on the %s: %s' % (dst, '; '.join('%s: %s' % (agentd.describe(a), a['error'])
                                                                for a in outcome['failed']))
        if module._diff:
            result['diff'] = dict(before=_lines(outcome['before']), after=_lines(outcome['wanted']),
                                  before_header='%s agent logins' % dst,
                                  after_header='%s agent logins (those of the %s)' % (dst, src))
    if result['error']:
        if p['fail_on_error']:
            module.fail_json(msg='agent logins not reconciled (%s -> %s): %s' % (src, dst, result['error']),
                             **result)
        module.warn('agent logins not reconciled (%s -> %s): %s' % (src, dst, result['error']))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type='str', required=True, choices=['primary', 'secondary']),
            config=dict(type='path', default='/etc/wazo-maintenance/agent-sync.conf'),
            retries=dict(type='int', default=3),
            delay=dict(type='float', default=5),
            fail_on_error=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == '__main__':
    main()
