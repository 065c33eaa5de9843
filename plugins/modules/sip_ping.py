#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sip_ping
short_description: Check that a SIP server answers an OPTIONS request over UDP
version_added: 0.1.0
description:
  - Sends SIP C(OPTIONS) requests over UDP from the target host to O(host):O(port) until one is answered
    with a final response or O(timeout) expires.
  - Used to check that a Wazo stack answers SIP (not only ICMP) before traffic is sent to it.
  - Read-only; runs the same in check mode.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description: Sends the same OPTIONS requests as in normal mode; it changes nothing in either mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
options:
  host:
    description: Address of the SIP server.
    type: str
    required: true
  port:
    description: UDP port of the SIP server.
    type: int
    default: 5060
  timeout:
    description: Seconds to keep trying before failing.
    type: float
    default: 10
  interval:
    description: Seconds to wait for an answer to each request before sending the next one.
    type: float
    default: 0.5
  expect:
    description: Final status codes that count as healthy. An empty list accepts any final response.
    type: list
    elements: int
    default: [200]
'''

EXAMPLES = r'''
- name: Wait until the secondary answers SIP
  wazo.maintenance_mode.sip_ping:
    host: 192.0.2.12
    timeout: 60
'''

RETURN = r'''
status_code:
  description: Status code of the final response received.
  returned: always
  type: int
  sample: 200
reason:
  description: Reason phrase of the final response.
  returned: always
  type: str
  sample: OK
attempts:
  description: Number of OPTIONS requests sent.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds until the answer (or the timeout).
  returned: always
  type: float
  sample: 0.004
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import ping


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type='str', required=True),
            port=dict(type='int', default=5060),
            timeout=dict(type='float', default=10),
            interval=dict(type='float', default=0.5),
            expect=dict(type='list', elements='int', default=[200]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        code, reason, attempts, elapsed = ping(params['host'], params['port'], params['timeout'],
                                               params['interval'])
    except (OSError, ValueError) as exc:
        module.fail_json(msg='cannot send SIP OPTIONS to %s:%d: %s' % (params['host'], params['port'], exc))
    result = dict(changed=False, status_code=code or 0, reason=reason, attempts=attempts,
                  elapsed=round(elapsed, 3))
    if code is None:
        module.fail_json(msg='no SIP answer from %s:%d within %ss (%d OPTIONS sent)'
                         % (params['host'], params['port'], params['timeout'], attempts), **result)
    if params['expect'] and code not in params['expect']:
        module.fail_json(msg='%s:%d answered SIP %d %s, expected one of %s'
                         % (params['host'], params['port'], code, reason, params['expect']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
