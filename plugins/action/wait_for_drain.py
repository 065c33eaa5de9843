# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of wazo.maintenance_mode.wait_for_drain (documentation in plugins/modules/wait_for_drain.py).

Resolves the stack's address and dispatcher set on the controller, then runs the module on the proxy in
slices, printing progress between slices, until drained or ``timeout``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.route_mode import STACK_SET

display = Display()

MODULE = 'wazo.maintenance_mode.wait_for_drain'
# Options handled here and not passed to the module as such.
ACTION_ONLY = ('timeout', 'slice')


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

        setid, address = self._resolve(args, task_vars)
        timeout = max(0.0, float(args['timeout']))
        slice_len = max(1.0, float(args['slice']))
        stack = args['stack']

        mod_args = dict((k, v) for k, v in args.items() if k not in ACTION_ONLY and v is not None)
        mod_args.update(setid=setid, stack_address=address)

        started = time.monotonic()
        samples = []
        last = None
        # Bounded: each round lasts about a slice (or one sample in check mode), and the loop stops at
        # timeout; the count cap guards against a module that returns at once without draining.
        max_rounds = int(timeout / max(0.05, float(args['poll_interval']))) + 2
        for _round in range(max_rounds):
            waited = time.monotonic() - started
            mod_args['slice_timeout'] = max(0.0, min(slice_len, timeout - waited))
            res = self._execute_module(module_name=MODULE, module_args=mod_args, task_vars=task_vars)
            if res.get('failed'):
                res['samples'] = samples + res.get('samples', [])
                res['waited'] = round(time.monotonic() - started, 3)
                return res
            samples.extend(res.get('samples', []))
            last = res
            waited = time.monotonic() - started
            if res.get('drained') or self._task.check_mode:
                break
            remaining = res.get('remaining', {})
            display.display('wait_for_drain: %s (set %d, %s): %s dialog(s) on the proxy, %s Asterisk channel(s) '
                            'left, waited %.0f s of %.0f s'
                            % (stack, setid, address, remaining.get('kamailio'),
                               'not checked' if remaining.get('asterisk') is None else remaining.get('asterisk'),
                               waited, timeout))
            if waited >= timeout:
                break

        waited = round(time.monotonic() - started, 3)
        remaining = (last or {}).get('remaining', {})
        result.update(changed=False, drained=bool(last and last.get('drained')), samples=samples, waited=waited,
                      remaining=remaining, stack={'name': stack, 'address': address, 'setid': setid})
        if not result['drained'] and not self._task.check_mode:
            result['failed'] = True
            result['msg'] = ('%s not drained after %.1f s: %s dialog(s) through the proxy (set %d) and %s Asterisk '
                             'channel(s) left (max_remaining_calls=%d)'
                             % (stack, waited, remaining.get('kamailio'), setid,
                                'unchecked' if remaining.get('asterisk') is None else remaining.get('asterisk'),
                                args['max_remaining_calls']))
        return result
