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

import random
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def _options_request(host, port, local_ip, local_port, call_id, cseq):
    branch = 'z9hG4bK-wmm-%08x' % random.getrandbits(32)
    tag = '%08x' % random.getrandbits(32)
    return (
        'OPTIONS sip:%(host)s:%(port)d SIP/2.0\r\n'
        'Via: SIP/2.0/UDP %(lip)s:%(lport)d;branch=%(branch)s;rport\r\n'
        'Max-Forwards: 70\r\n'
        'From: <sip:wazo-maintenance@%(lip)s>;tag=%(tag)s\r\n'
        'To: <sip:%(host)s:%(port)d>\r\n'
        'Call-ID: %(cid)s\r\n'
        'CSeq: %(cseq)d OPTIONS\r\n'
        'Contact: <sip:wazo-maintenance@%(lip)s:%(lport)d>\r\n'
        'Accept: application/sdp\r\n'
        'Content-Length: 0\r\n\r\n'
    ) % dict(host=host, port=port, lip=local_ip, lport=local_port, branch=branch, tag=tag,
             cid=call_id, cseq=cseq)


def parse_status(data):
    """Return (code, reason) of a SIP response, or None when it is not one."""
    line = data.split(b'\r\n', 1)[0].decode('utf-8', 'replace')
    parts = line.split(' ', 2)
    if len(parts) < 2 or parts[0] != 'SIP/2.0' or not parts[1].isdigit():
        return None
    return int(parts[1]), (parts[2] if len(parts) > 2 else '')


def sip_ping(host, port, timeout, interval):
    """Send OPTIONS until a final response arrives; return (code, reason, attempts, elapsed)."""
    start = time.monotonic()
    call_id = 'wmm-%016x@sip-ping' % random.getrandbits(64)
    attempts = 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect((host, port))
        local_ip, local_port = sock.getsockname()
        while time.monotonic() - start < timeout:
            attempts += 1
            try:
                sock.send(_options_request(host, port, local_ip, local_port, call_id, attempts).encode())
            except OSError:
                time.sleep(min(interval, max(0.0, timeout - (time.monotonic() - start))))
                continue
            deadline = min(time.monotonic() + interval, start + timeout)
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = sock.recv(65535)
                except socket.timeout:
                    break
                except OSError:  # ICMP port unreachable: nobody listens yet
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    break
                status = parse_status(data)
                if status and status[0] >= 200:
                    return status[0], status[1], attempts, time.monotonic() - start
        return None, '', attempts, time.monotonic() - start
    finally:
        sock.close()


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
        code, reason, attempts, elapsed = sip_ping(params['host'], params['port'], params['timeout'],
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
