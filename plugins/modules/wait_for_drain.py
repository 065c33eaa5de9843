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
  - Stops at the deadline, O(deadline) if given, else O(timeout) seconds after the start. Then, with
    O(policy=stop), fails reporting what is left (RV(outcome=deadline_stop)). With O(policy=hangup), returns
    RV(outcome=deadline_hangup) without failing, and the caller hangs the calls left up (a second run of
    this module with O(hangup) on the stack itself, see below).
  - Every O(progress_interval) seconds while waiting it prints the calls left (Kamailio dialogs, Asterisk
    channels) and the age of the longest call through the proxy (the C(start_ts) of Kamailio's dialogs of
    the stack's set, RPC C(dlg.profile_list)), and keeps them in RV(progress).
  - With O(hangup), the module runs B(on the stack) (C(delegate_to) the stack, through the Ansible
    connection, not the proxy's restricted key). It reloads the dialplan, checks that O(hangup.context)
    is loaded (C(dialplan show)), lists the channels (C(core show channels concise)) and redirects each
    into that context (C(channel redirect)), which plays an announcement and hangs up with a cause. It
    does not wait; the caller runs the drain again, bounded.
  - With O(validate_only), only reads O(deadline) (refused with a clear message when it cannot be read) and
    returns when it would fall for a drain starting now; nothing is reached.
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
  deadline:
    description:
      - When to stop waiting. A duration counted from the start of the drain (V(90), V(90s), V(45m), V(2h)), a
        time of day V(HH:MM[:SS]) (the next one, controller's local time zone) or an ISO 8601 date and time
        (naive = controller's local time zone). Empty = O(timeout) seconds after the start.
      - Read once by C(plugins/module_utils/drain.py) C(parse_deadline), on the controller (action plugin).
    type: str
    default: ''
  policy:
    description:
      - What to do when the deadline passes with calls left. V(stop) fails (the caller stays where it is);
        V(hangup) returns without failing, with RV(outcome=deadline_hangup), for the caller to hang them up.
    type: str
    choices: [stop, hangup]
    default: stop
  progress_interval:
    description:
      - Seconds between two progress lines (and RV(progress) samples). Default O(slice).
    type: float
  validate_only:
    description: Only read O(deadline) and return RV(deadline); reaches no host.
    type: bool
    default: false
  hangup:
    description:
      - Run on the stack itself (C(delegate_to) the stack). Redirect every channel of its Asterisk into
        O(hangup.context) (announcement, then C(Hangup(cause))), after a C(dialplan reload) and a check that
        the context is loaded. Returns RV(hung_up). Kamailio is not reached in this mode.
    type: dict
    suboptions:
      context:
        description: Dialplan context the channels are sent to (written by the caller, e.g. the upgrade role).
        type: str
        required: true
      exten:
        description: Extension in O(hangup.context).
        type: str
        default: s
      priority:
        description: Priority in O(hangup.context).
        type: int
        default: 1
      cause:
        description: The hangup cause that context ends the calls with (recorded in RV(hung_up)).
        type: int
        default: 16
      reload:
        description: Run C(dialplan reload) first.
        type: bool
        default: true
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

- name: Wait until 03:30 at most, then hang up what is left (see roles/upgrade/tasks/drain_hangup.yml)
  wazo.maintenance_mode.wait_for_drain:
    stack: wazo1.example.com
    deadline: "03:30"
    policy: hangup
    progress_interval: 10
  register: drain

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
outcome:
  description:
    - V(drained), V(deadline_stop) (deadline passed, O(policy=stop)) or V(deadline_hangup) (deadline passed,
      O(policy=hangup), the calls left are to be hung up). Not returned with O(hangup) or O(validate_only).
  returned: success and failure after the wait
  type: str
  sample: drained
deadline:
  description: The deadline, ISO 8601 in UTC.
  returned: except with O(hangup)
  type: str
  sample: "2026-12-02T03:30:00Z"
deadline_kind:
  description: How the deadline was given, V(timeout) (none given), V(duration) or V(time).
  returned: except with O(hangup)
  type: str
  sample: duration
progress:
  description:
    - One entry per progress interval while not drained, and the last sample. C(calls) = Kamailio dialogs through
      the proxy, C(channels) = Asterisk channels (null when not checked), C(longest_s) = age of the oldest
      dialog through the proxy (null when it cannot be read or none).
  returned: after the wait
  type: list
  elements: dict
  sample: [{at: "2026-12-02T10:00:10Z", calls: 3, channels: 3, longest_s: 95}]
hung_up:
  description: With O(hangup), each channel redirected (or the error for that channel).
  returned: with O(hangup)
  type: list
  elements: dict
  sample: [{channel: PJSIP/anonymous-00000012, caller: sipp, age_s: 141, cause: 16, redirected: true, at: '2026-12-02T03:30:01Z'}]
channels_before:
  description: With O(hangup), the channels listed before the redirects.
  returned: with O(hangup)
  type: int
  sample: 3
stack:
  description: The stack, its address and its dispatcher set.
  returned: always
  type: dict
  sample: {name: wazo1.example.com, address: 192.0.2.11, setid: 1}
'''

import datetime
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.drain import (
    BACKEND_PROFILE_LIST,
    CHANNELS_COUNT_CMD,
    POLICIES,
    DrainError,
    asterisk_channels,
    context_loaded,
    dialog_ages,
    iso,
    parse_channels_concise,
    redirect_command,
    redirect_ok,
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
    res.update(changed=False, stack={'name': p['stack'], 'address': p['stack_address'], 'setid': p['setid']},
               longest_s=None if res['drained'] else longest_dialog(rpc, p['setid']))
    return res


def longest_dialog(rpc, setid, now=time.time):
    """Age (s) of the oldest dialog through the proxy on this set; None when there is none or it cannot be read
    (progress information only: never fails the drain)."""
    try:
        ages = dialog_ages(rpc.call(BACKEND_PROFILE_LIST, 'backend', str(setid)), now())
    except Exception:  # pylint: disable=broad-except
        return None
    return max(ages) if ages else None


def asterisk_rx(runner, command, timeout=30):
    """``asterisk -rx COMMAND`` on this host; its output (stdout + stderr). It exits 0 even when the command
    failed: the caller parses the output."""
    res = runner.run([runner.bin('asterisk'), '-rx', command], timeout=timeout)
    if res.timed_out:
        raise DrainError('asterisk -rx %r timed out after %d s' % (command, timeout))
    return (res.out or '') + (res.err or '')


def hangup(module, runner, h, clock=time.time):
    """Redirect every channel of this host's Asterisk into the hangup context. Returns the result dict."""
    context = h['context']
    if h['reload'] and not module.check_mode:
        asterisk_rx(runner, 'dialplan reload')
    shown = asterisk_rx(runner, 'dialplan show %s' % context)
    if not context_loaded(shown, context):
        raise DrainError('dialplan context %s is not loaded on this Asterisk (dialplan show %s: %s)'
                         % (context, context, shown.strip()[:300]))
    try:
        listed = parse_channels_concise(asterisk_rx(runner, 'core show channels concise'))
    except (AsteriskNotRunning, AsteriskOutputError) as exc:
        raise DrainError('core show channels concise: %s' % exc)
    hung_up = []
    for chan in listed:
        entry = {'channel': chan['channel'], 'caller': chan['caller'], 'age_s': chan['duration_s'],
                 'cause': h['cause'],
                 'at': iso(datetime.datetime.fromtimestamp(clock(), tz=datetime.timezone.utc))}
        if chan['context'] == context:
            entry.update(redirected=True, note='already in %s' % context)
        elif module.check_mode:
            entry.update(redirected=False, note='check mode')
        else:
            out = asterisk_rx(runner, redirect_command(chan['channel'], context, h['exten'], h['priority']))
            entry['redirected'] = redirect_ok(out, chan['channel'])
            if not entry['redirected']:
                entry['error'] = out.strip()[:300]
        hung_up.append(entry)
    return {'changed': any(e['redirected'] and 'note' not in e for e in hung_up), 'hung_up': hung_up,
            'channels_before': len(listed), 'context': context}


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
        deadline=dict(type='str', default=''),
        policy=dict(type='str', choices=list(POLICIES), default='stop'),
        progress_interval=dict(type='float'),
        validate_only=dict(type='bool', default=False),
        hangup=dict(type='dict', options=dict(
            context=dict(type='str', required=True),
            exten=dict(type='str', default='s'),
            priority=dict(type='int', default=1),
            cause=dict(type='int', default=16),
            reload=dict(type='bool', default=True),
        )),
    )
    spec.update(ssh_common_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    if p['hangup']:
        try:
            result = hangup(module, CommandRunner(module), p['hangup'])
        except DrainError as exc:
            module.fail_json(msg='wait_for_drain %s, hang up: %s' % (p['stack'], exc))
        module.exit_json(**result)
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
