# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wazo.maintenance_mode.upgrade_plan filter: its arguments, its documentation, and the exact
expression roles/upgrade/tasks/plan.yml renders, run by ansible-playbook on localhost."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import inspect
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.wazo.maintenance_mode.plugins.filter import upgrade_plan as plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
PLAN_YML = os.path.join(ROOT, 'roles', 'upgrade', 'tasks', 'plan.yml')

OLD = {'version_before': '24.05', 'candidate': '25.03', 'upgrade_available': True}
NEW = {'version_before': '25.03', 'candidate': '25.03', 'upgrade_available': False}
STATE = {'started': '2026-01-10T02:00:01Z', 'from': '24.05', 'target': '25.03'}
OTHER_LOCK = {'owner': 'wazo-mode', 'reason': 'disk swap', 'since': '2026-01-09T22:00:00Z'}


def upgrade_plan():
    return plugin.FilterModule().filters()['upgrade_plan']


def test_the_filter_is_registered_under_its_file_name():
    assert upgrade_plan() is plugin.upgrade_plan


@pytest.mark.parametrize('state, action', [
    (None, 'full'),
    (STATE, 'finish'),
    (json.dumps(STATE), 'finish'),
    (json.dumps(STATE).encode('utf-8'), 'finish'),
])
def test_state_as_dict_or_json_text(state, action):
    primary = NEW if action == 'finish' else OLD
    plan = upgrade_plan()(primary, dict(primary), state=state)
    assert plan['action'] == action and plan['errors'] == []
    assert plan['resuming'] is (state is not None)


@pytest.mark.parametrize('abort, refused', [(False, True), ('no', True), ('true', False), ('yes', False), (True, False)])
def test_abort_accepts_ansible_booleans(abort, refused):
    plan = upgrade_plan()(OLD, OLD, lock=OTHER_LOCK, abort=abort)
    assert bool(plan['errors']) is refused


def test_abort_that_is_not_a_boolean():
    with pytest.raises(AnsibleFilterError, match='abort must be a boolean'):
        upgrade_plan()(OLD, OLD, abort='maybe')


@pytest.mark.parametrize('kwargs, message', [
    ({'state': '{"started": '}, 'upgrade-state.json is not JSON'),
    ({'state': '[]'}, 'upgrade-state.json is not a JSON object'),
    ({'lock': 'wazo-mode'}, 'the maintenance lock must be a dict or None'),
])
def test_unreadable_inputs_are_filter_errors(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        upgrade_plan()(OLD, OLD, **kwargs)


def test_a_failed_stack_result_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match='the secondary stack: the wazo_upgrade result has no version_before'):
        upgrade_plan()(OLD, {'failed': True, 'msg': 'apt-cache policy failed'})


def test_documentation_matches_the_function():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'upgrade_plan'
    params = list(inspect.signature(plugin.upgrade_plan).parameters)
    assert params[0] == 'primary'
    options = doc['options']
    assert list(options) == ['_input'] + params[1:]
    assert [p.strip() for p in doc['positional'].split(',')] == ['_input', 'secondary']
    defaults = dict((name, p.default) for name, p in inspect.signature(plugin.upgrade_plan).parameters.items())
    for name in ('mode', 'abort', 'lock_owner'):
        assert options[name]['default'] == defaults[name]
    returned = yaml.safe_load(plugin.RETURN)['_value']['contains']
    plan = upgrade_plan()(OLD, OLD)
    assert sorted(returned) == sorted(plan)
    assert returned['action']['choices'] == ['full', 'resume', 'finish', 'none']
    assert yaml.safe_load(plugin.EXAMPLES)


def _plan_yml_decision_task():
    with open(PLAN_YML) as handle:
        tasks = yaml.safe_load(handle)
    found = [t for t in tasks if 'wazo_mm_upgrade_plan' in (t.get('ansible.builtin.set_fact') or {})]
    assert len(found) == 1, 'plan.yml must set wazo_mm_upgrade_plan in one set_fact task'
    return found[0]


def _ansible_playbook():
    path = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    if not os.path.exists(path):
        pytest.skip('ansible-playbook is not installed beside %s' % sys.executable)
    return path


PLAN_CASES = [
    # id, registered versions, saved state, kamailio_mode result, abort -> action, number of errors
    ('fresh-full', [OLD, OLD], None, {'mode': 'normal', 'lock': None}, False, 'full', 0),
    ('resume', [OLD, NEW], STATE, {'mode': 'maintenance', 'lock': None}, False, 'resume', 0),
    ('refused-lock', [OLD, OLD], None, {'mode': 'normal', 'lock': OTHER_LOCK}, False, 'full', 1),
    ('refused-versions', [OLD, NEW], None, {'mode': 'normal', 'lock': None}, False, 'none', 1),
    ('abort-string-true', [OLD, NEW], None, {'mode': 'normal', 'lock': None}, 'true', 'none', 0),
]


def _state_raw(state):
    if state is None:
        return {'failed': True, 'msg': 'file not found: /var/lib/wazo-maintenance/upgrade-state.json'}
    return {'content': base64.b64encode(json.dumps(state).encode()).decode(), 'encoding': 'base64'}


@pytest.fixture(scope='module')
def plans_from_plan_yml(tmp_path_factory):
    """Runs the set_fact of plan.yml, as is, in one play per case of PLAN_CASES (one ansible-playbook run, no
    module), fed what plan.yml's earlier tasks register (the slurp result included); returns {case id: plan}."""
    task = _plan_yml_decision_task()
    out = tmp_path_factory.mktemp('plan_yml')
    plays = []
    for case_id, results, state, mode_now, abort, _action, _errors in PLAN_CASES:
        plays.append({
            'name': case_id,
            'hosts': 'localhost',
            'gather_facts': False,
            'vars': {
                'wazo_mm_upgrade_versions': {'results': [dict(r, item=name) for r, name in zip(results, ('p', 's'))]},
                'wazo_mm_upgrade_mode_now': mode_now,
                'wazo_mm_upgrade_state_raw': _state_raw(state),
                'wazo_mm_upgrade_abort': abort,
            },
            'tasks': [task, {'name': 'Show the plan', 'ansible.builtin.debug': {'var': 'wazo_mm_upgrade_plan'}}],
        })
    playbook = out / 'play.yml'
    playbook.write_text(yaml.safe_dump(plays))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
               ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
    proc = subprocess.run([_ansible_playbook(), '-i', 'localhost,', '-c', 'local', str(playbook)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads(proc.stdout)
    return dict((play['play']['name'], play['tasks'][-1]['hosts']['localhost']['wazo_mm_upgrade_plan'])
                for play in report['plays'])


@pytest.mark.parametrize('case_id, results, state, mode_now, abort, action, errors', PLAN_CASES,
                         ids=[c[0] for c in PLAN_CASES])
def test_plan_yml_expression_on_localhost(plans_from_plan_yml, case_id, results, state, mode_now, abort, action,
                                          errors):
    plan = plans_from_plan_yml[case_id]
    assert plan['action'] == action
    assert len(plan['errors']) == errors, plan['errors']
    assert plan['resuming'] is (state is not None)
    assert plan['state'] == (state or {})
    assert plan['from'] == {'primary': results[0]['version_before'], 'secondary': results[1]['version_before']}
    assert plan['target'] == results[0]['candidate']
    assert plan['mode'] == mode_now['mode']
    assert plan['lock'] == (mode_now['lock'] or {})
