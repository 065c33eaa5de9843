# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of wazo.maintenance_mode.wait_for_drain (documentation in plugins/modules/wait_for_drain.py).

Reads the deadline (``module_utils/drain.py``), resolves the stack's address and dispatcher set on the
controller, then runs the module on the proxy in slices of one progress interval, printing and recording the
calls left between slices, until drained or the deadline. With ``hangup``, one module run on the task's host
(the stack, delegated). With ``validate_only``, only the deadline is read.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import drain
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.route_mode import STACK_SET

display = Display()

MODULE = 'wazo.maintenance_mode.wait_for_drain'
# Options handled here and not passed to the module as such.
ACTION_ONLY = ('timeout', 'slice', 'deadline', 'policy', 'progress_interval', 'validate_only', 'hangup')


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _resolve(self, args, task_vars):
        """The stack's dispatcher set and address: given explicitly, else from wazo_mm_topology (preflight)."""
        stack = args['stack']
        setid, address = args.get('setid'), args.get('stack_address')
        topology = self._templar.template(task_vars.get('wazo_mm_topology') or {})
        for part, sid in STACK_SET.items():
            entry = topology.get(part) or {}
            if entry.get('host') == stack:
                setid = sid if setid is None else setid
                address = address or entry.get('address')
        if setid is None or not address:
            raise AnsibleActionFail('wait_for_drain: %s is neither the primary nor the secondary of wazo_mm_topology '
                                    '(run the preflight role first), and setid/stack_address are not both given'
                                    % stack)
        return int(setid), str(address)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        # Same spec as the module: validated once here on the controller.
        from ansible_collections.wazo.maintenance_mode.plugins.modules.wait_for_drain import argument_spec
        _validation, args = self.validate_argument_spec(argument_spec=argument_spec())
        stack = args['stack']
        timeout = max(0.0, float(args['timeout']))

        # The deadline is read here, once, by the one parser (module_utils/drain.py).
        now = datetime.datetime.now().astimezone()
        try:
            deadline, kind = drain.resolve_deadline(args['deadline'], timeout, now)
        except drain.DeadlineError as exc:
            raise AnsibleActionFail('%s (wazo_mm_upgrade_drain_deadline)' % exc)
        if args['validate_only']:
            result.update(changed=False, deadline=drain.iso(deadline), deadline_kind=kind,
                          deadline_local=deadline.astimezone().replace(microsecond=0).isoformat(),
                          seconds_left=round((deadline - now).total_seconds(), 3))
            return result

        if args['hangup']:
            return self._hangup(args, task_vars, result)

        setid, address = self._resolve(args, task_vars)
        every = max(1.0, float(args['progress_interval'] or args['slice']))
        total = max(0.0, (deadline - now).total_seconds())

        mod_args = dict((k, v) for k, v in args.items() if k not in ACTION_ONLY and v is not None)
        mod_args.update(setid=setid, stack_address=address)
        display.display('wait_for_drain: %s (set %d, %s): deadline %s (%s), policy %s'
                        % (stack, setid, address, deadline.astimezone().replace(microsecond=0).isoformat(), kind, args['policy']))

        started = time.monotonic()
        samples, progress = [], []
        last = None
        # Bounded: each round lasts about a progress interval (or one sample in check mode), and the loop stops
        # at the deadline; the count cap guards against a module that returns at once without draining.
        max_rounds = int(total / max(0.05, float(args['poll_interval']))) + 2
        for _round in range(max_rounds):
            waited = time.monotonic() - started
            mod_args['slice_timeout'] = max(0.0, min(every, total - waited))
            res = self._execute_module(module_name=MODULE, module_args=mod_args, task_vars=task_vars)
            if res.get('failed'):
                res['samples'] = samples + res.get('samples', [])
                res['progress'] = progress
                res['waited'] = round(time.monotonic() - started, 3)
                res['deadline'] = drain.iso(deadline)
                return res
            samples.extend(res.get('samples', []))
            last = res
            waited = time.monotonic() - started
            remaining = res.get('remaining', {})
            progress.append({'at': drain.iso(datetime.datetime.now().astimezone()),
                             'calls': remaining.get('kamailio'), 'channels': remaining.get('asterisk'),
                             'longest_s': res.get('longest_s')})
            if res.get('drained') or self._task.check_mode:
                break
            display.display('wait_for_drain: %s: %s call(s) on the proxy, %s Asterisk channel(s) left, longest %s, '
                            'waited %.0f s, %.0f s to the deadline (%s)'
                            % (stack, remaining.get('kamailio'),
                               'not checked' if remaining.get('asterisk') is None else remaining.get('asterisk'),
                               'unknown' if res.get('longest_s') is None else '%s s' % res.get('longest_s'),
                               waited, max(0.0, total - waited), args['policy']))
            if waited >= total:
                break

        waited = round(time.monotonic() - started, 3)
        remaining = (last or {}).get('remaining', {})
        drained = bool(last and last.get('drained'))
        if drained:
            outcome = 'drained'
        elif self._task.check_mode:
            outcome = None
        else:
            outcome = 'deadline_hangup' if args['policy'] == 'hangup' else 'deadline_stop'
        result.update(changed=False, drained=drained, samples=samples, waited=waited, remaining=remaining,
                      stack={'name': stack, 'address': address, 'setid': setid}, outcome=outcome,
                      deadline=drain.iso(deadline), deadline_kind=kind, policy=args['policy'], progress=progress,
                      hung_up=[])
        if outcome in ('deadline_stop', 'deadline_hangup'):
            longest = progress[-1]['longest_s'] if progress else None
            result['msg'] = ('%s not drained at the deadline %s (after %.1f s): %s call(s) through the proxy (set %d)'
                             ' and %s Asterisk channel(s) left, the longest up for %s (max_remaining_calls=%d); '
                             'policy %s'
                             % (stack, deadline.astimezone().replace(microsecond=0).isoformat(), waited, remaining.get('kamailio'), setid,
                                'unchecked' if remaining.get('asterisk') is None else remaining.get('asterisk'),
                                'an unknown time' if longest is None else '%s s' % longest,
                                args['max_remaining_calls'], args['policy']))
            result['failed'] = outcome == 'deadline_stop'
        return result

    def _hangup(self, args, task_vars, result):
        """One module run on the task's host (the stack, delegated): redirect its channels into the context."""
        mod_args = {'stack': args['stack'], 'hangup': args['hangup']}
        res = self._execute_module(module_name=MODULE, module_args=mod_args, task_vars=task_vars)
        for entry in res.get('hung_up', []):
            display.display('wait_for_drain: %s: %s %s (caller %s, up %s s) -> %s, cause %s%s'
                            % (args['stack'], 'redirected' if entry.get('redirected') else 'NOT redirected',
                               entry.get('channel'), entry.get('caller') or '-', entry.get('age_s'),
                               args['hangup']['context'], entry.get('cause'),
                               (': ' + entry['error']) if entry.get('error') else ''))
        result.update(res)
        return result
