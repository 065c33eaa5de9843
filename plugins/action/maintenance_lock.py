# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of wazo.maintenance_mode.maintenance_lock (documentation in plugins/modules/maintenance_lock.py).

On the controller: names this run, reads the lock on the proxy (the module, state=read), judges it
(``module_utils/controller_run.py``: free, ours, a dead run of this controller, a live or foreign run,
another owner), then takes it (the module again) or refuses with who holds it and since when.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import controller_run

MODULE = 'wazo.maintenance_mode.maintenance_lock'


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        args = dict(self._task.args)
        state = args.get('state', 'present')
        owner = args.get('owner', 'ansible')
        me = controller_run.identity()
        base = dict((k, v) for k, v in args.items() if k in ('owner', 'reason', 'state_dir'))

        read = self._execute_module(module_name=MODULE, task_vars=task_vars,
                                    module_args=dict(base, state='read', run_identity=me))
        if read.get('failed'):
            return read
        lock = read.get('lock')
        verdict, message = controller_run.judge(lock, me, owner, args.get('takeover') or '')
        result.update(run=me, verdict=verdict, previous_lock=lock, lock=lock, changed=False)

        if state == 'read':
            result['msg'] = message
            return result
        if state == 'absent':
            res = self._execute_module(module_name=MODULE, task_vars=task_vars,
                                       module_args=dict(base, state='absent', run_identity=me))
            res.update(run=me, verdict=verdict)
            return res
        if verdict in (controller_run.LIVE, controller_run.FOREIGN, controller_run.OTHER):
            result.update(failed=True, msg='%s refused before any change: %s' % (owner, message))
            return result
        if verdict == controller_run.OURS:
            result['msg'] = message
            return result
        res = self._execute_module(module_name=MODULE, task_vars=task_vars,
                                   module_args=dict(base, state='present', run_identity=me,
                                                    replace_run=None if lock is None else (lock.get('run') or '')))
        res.update(run=me, verdict=verdict)
        if res.get('failed'):
            # A race lost between the read and the take: the winner's lock is in the message.
            res['msg'] = '%s %s' % (owner, res.get('msg', ''))
            return res
        if verdict != controller_run.FREE:
            res.setdefault('warnings', []).append(message)
        res['msg'] = message + (' (check mode: nothing taken)' if self._task.check_mode else '')
        return res
