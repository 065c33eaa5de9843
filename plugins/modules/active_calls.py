#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: active_calls
short_description: Count the channels and calls in progress on a Wazo stack's Asterisk
version_added: 0.1.0
description:
  - Runs C(asterisk -rx 'core show channels count') on the stack and returns the active channels,
    the active calls and the calls processed since Asterisk started.
  - Understands every form Asterisk prints, including the singular ones (C(1 active call)) and the
    one used when C(maxcalls) is set (C(N of M max active calls (x% of capacity))).
  - Fails clearly when Asterisk is not running (the CLI cannot reach its control socket) or prints
    something that is not a channel count.
  - Read-only; never reports a change.
  - To drain a stack, wait for RV(channels) to reach 0, not only RV(calls). Channels that never
    enter the dialplan (ARI originates, Local channels) are not counted as calls.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description: The command is read-only and runs in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  asterisk_path:
    description:
      - The C(asterisk) binary, a name looked up in E(PATH) (and C(/usr/sbin)) or an absolute path.
    type: str
    default: asterisk
  timeout:
    description:
      - Seconds to wait for C(asterisk -rx) before giving up (a wedged Asterisk can block the CLI).
      - C(0) waits forever. Needs the C(timeout) command (coreutils) when not C(0).
    type: int
    default: 30
requirements:
  - Asterisk running on the managed host, and the permission to use its CLI socket (usually root).
seealso:
  - module: wazo.maintenance_mode.wait_for_drain
'''

EXAMPLES = r'''
- name: Count the calls on the primary
  wazo.maintenance_mode.active_calls:
  register: primary_calls

- name: Refuse to upgrade while calls are in progress
  ansible.builtin.assert:
    that: primary_calls.channels == 0
    fail_msg: "{{ primary_calls.channels }} channel(s) still up on {{ inventory_hostname }}"

- name: Use an Asterisk installed elsewhere
  wazo.maintenance_mode.active_calls:
    asterisk_path: /opt/asterisk/sbin/asterisk
    timeout: 10
'''

RETURN = r'''
channels:
  description: Active channels (C(N active channels)). The number to watch when draining.
  returned: success
  type: int
  sample: 4
calls:
  description: Active calls (C(N active calls) or C(N of M max active calls ...)).
  returned: success
  type: int
  sample: 2
processed:
  description: Calls processed since Asterisk started (C(N calls processed)).
  returned: success
  type: int
  sample: 1342
cmd:
  description: The command that was run.
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/asterisk", "-rx", "core show channels count"]
rc:
  description: Exit code of the command (informative; the output decides).
  returned: always
  type: int
  sample: 0
stderr:
  description: What the command printed on standard error.
  returned: always
  type: str
  sample: ""
stdout:
  description: What the command printed.
  returned: always
  type: str
  sample: "4 active channels\n2 active calls\n1342 calls processed\n"
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)

CLI_COMMAND = 'core show channels count'


def run_module(module):
    runner = CommandRunner(module)
    cmd = [runner.bin(module.params['asterisk_path']), '-rx', CLI_COMMAND]
    timeout = module.params['timeout']
    res = runner.run(cmd, timeout=timeout)
    rc, stdout, stderr = res.rc, res.out, res.err
    result = dict(changed=False, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
    if res.timed_out:
        module.fail_json(msg='asterisk -rx %r did not answer within %d s (Asterisk wedged?)' % (CLI_COMMAND, timeout), **result)
    try:
        # asterisk -rx prints the "Unable to connect" message on stdout or stderr depending on the
        # version: look at both, the parser only needs the count lines to be somewhere.
        counts = parse_channels_count((stdout or '') + '\n' + (stderr or ''))
    except AsteriskNotRunning as exc:
        module.fail_json(msg='Asterisk is not running (or its control socket is unreachable): %s' % exc, **result)
    except AsteriskOutputError as exc:
        module.fail_json(msg='unexpected output from asterisk -rx %r (rc=%s): %s' % (CLI_COMMAND, rc, exc), **result)
    result.update(counts)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            asterisk_path=dict(type='str', default='asterisk'),
            timeout=dict(type='int', default=30),
        ),
        supports_check_mode=True,
    )
    if module.params['timeout'] < 0:
        module.fail_json(msg='timeout must be 0 (no timeout) or a number of seconds, not %d' % module.params['timeout'])
    run_module(module)


if __name__ == '__main__':
    main()
