# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade decision of module_utils/upgrade_plan.py: one row per situation upgrade.yml can meet."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import upgrade_plan as up


def stack(version, candidate=None, available=None):
    """A wazo_upgrade check-mode result (with a few of the keys plan.yml ignores)."""
    candidate = version if candidate is None else candidate
    if available is None:
        available = up_tuple(candidate) > up_tuple(version)
    return {'changed': available, 'version_before': version, 'version_after': candidate, 'candidate': candidate,
            'upgrade_available': available, 'item': 'stack', 'cmd': [], 'log': []}


def up_tuple(version):
    return tuple(int(part) for part in version.split('.'))


OLD, NEW, NEWER = '24.05', '25.03', '25.04'
STATE = {'started': '2026-01-10T02:00:01Z', 'from': OLD, 'target': NEW}
OUR_LOCK = {'owner': 'upgrade.yml', 'reason': 'upgrade to 25.03', 'since': '2026-01-10T02:00:05Z'}
OTHER_LOCK = {'owner': 'wazo-mode', 'reason': 'disk swap', 'since': '2026-01-09T22:00:00Z'}

ERR_CANDIDATES = 'the stacks would upgrade to different versions (primary 25.03, secondary 25.04): check their apt sources'
ERR_DIFFER = ('the stacks are on different versions (primary 24.05, secondary 25.03) and no upgrade of ours is in '
              'progress: upgrade them to the same version first')
ERR_LOCK = 'the maintenance lock is held by wazo-mode since 2026-01-09T22:00:00Z (disk swap)'
ERR_MODE = 'the route mode is maintenance, not normal: traffic is not on the primary'

# id, primary, secondary, state, lock, mode, abort -> action, errors
ROWS = [
    # same version
    ('same-no-upgrade', stack(NEW), stack(NEW), None, None, 'normal', False, 'none', []),
    ('same-upgrade', stack(OLD, NEW), stack(OLD, NEW), None, None, 'normal', False, 'full', []),
    ('same-upgrade-candidates-differ', stack(OLD, NEW), stack(OLD, NEWER), None, None, 'normal', False,
     'full', [ERR_CANDIDATES]),
    ('same-only-secondary-has-upgrade', stack(NEW), stack(NEW, NEWER), None, None, 'normal', False,
     'full', [ERR_CANDIDATES]),
    ('same-no-upgrade-saved-state-finish', stack(NEW), stack(NEW), STATE, None, 'normal', False, 'finish', []),
    ('finish-in-maintenance', stack(NEW), stack(NEW), STATE, OUR_LOCK, 'maintenance', False, 'finish', []),
    ('same-upgrade-saved-state-rerun-before-switch', stack(OLD, NEW), stack(OLD, NEW), STATE, OUR_LOCK, 'normal',
     False, 'full', []),
    ('empty-state-is-no-state', stack(NEW), stack(NEW), {}, None, 'normal', False, 'none', []),
    # different versions
    ('resume-secondary-at-target', stack(OLD, NEW), stack(NEW), STATE, OUR_LOCK, 'maintenance', False, 'resume', []),
    ('resume-after-switch-back', stack(OLD, NEW), stack(NEW), STATE, OUR_LOCK, 'normal', False, 'resume', []),
    ('differ-without-state-refused', stack(OLD, NEW), stack(NEW), None, None, 'normal', False, 'none', [ERR_DIFFER]),
    ('differ-without-state-secondary-behind', stack(NEW), stack(OLD, NEW), None, None, 'normal', False, 'none',
     ['the stacks are on different versions (primary 25.03, secondary 24.05) and no upgrade of ours is in progress: '
      'upgrade them to the same version first']),
    ('differ-state-candidate-moved', stack(OLD, NEWER), stack(NEW), STATE, OUR_LOCK, 'maintenance', False, 'none',
     ['the stacks are on different versions (primary 24.05, secondary 25.03) and the secondary is not at the version '
      'the primary would now upgrade to (25.04): the unfinished upgrade (started 2026-01-10T02:00:01Z, target 25.03) '
      'cannot resume; pin the primary to the secondary\'s version (or restore the secondary from its snapshot) first']),
    # the maintenance lock
    ('lock-ours-fresh-full', stack(OLD, NEW), stack(OLD, NEW), None, OUR_LOCK, 'normal', False, 'full', []),
    ('lock-other-full', stack(OLD, NEW), stack(OLD, NEW), None, OTHER_LOCK, 'normal', False, 'full', [ERR_LOCK]),
    ('lock-other-resume', stack(OLD, NEW), stack(NEW), STATE, OTHER_LOCK, 'maintenance', False, 'resume', [ERR_LOCK]),
    ('lock-other-nothing-to-do', stack(NEW), stack(NEW), None, OTHER_LOCK, 'normal', False, 'none', [ERR_LOCK]),
    ('lock-without-fields', stack(NEW), stack(NEW), None, {'x': 1}, 'normal', False, 'none',
     ['the maintenance lock is held by ? since ? ()']),
    ('differ-and-lock-other', stack(OLD, NEW), stack(NEW), None, OTHER_LOCK, 'normal', False, 'none',
     [ERR_DIFFER, ERR_LOCK]),
    # the route mode
    ('maintenance-fresh-full', stack(OLD, NEW), stack(OLD, NEW), None, None, 'maintenance', False, 'full', [ERR_MODE]),
    ('maintenance-full-with-state', stack(OLD, NEW), stack(OLD, NEW), STATE, OUR_LOCK, 'maintenance', False, 'full',
     [ERR_MODE]),
    ('maintenance-nothing-to-do', stack(NEW), stack(NEW), None, None, 'maintenance', False, 'none', []),
    ('all-refusals-in-order', stack(OLD, NEW), stack(OLD, NEWER), None, OTHER_LOCK, 'maintenance', False, 'full',
     [ERR_CANDIDATES, ERR_LOCK, ERR_MODE]),
    # abort: the action is still computed, nothing is refused
    ('abort-lock-other', stack(OLD, NEW), stack(NEW), STATE, OTHER_LOCK, 'maintenance', True, 'resume', []),
    ('abort-maintenance-fresh', stack(OLD, NEW), stack(OLD, NEW), None, None, 'maintenance', True, 'full', []),
    ('abort-rerun-after-state-removed', stack(OLD, NEW), stack(NEW), None, OUR_LOCK, 'normal', True, 'none', []),
    ('abort-candidates-differ', stack(OLD, NEW), stack(OLD, NEWER), STATE, OUR_LOCK, 'normal', True, 'full', []),
]


@pytest.mark.parametrize('primary, secondary, state, lock, mode, abort, action, errors',
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decision(primary, secondary, state, lock, mode, abort, action, errors):
    plan = up.decide(primary, secondary, state=state, lock=lock, mode=mode, abort=abort)
    assert plan['action'] == action
    assert plan['errors'] == errors


def test_row_ids_are_unique():
    assert len(set(row[0] for row in ROWS)) == len(ROWS)


def test_plan_shape():
    plan = up.decide(stack(OLD, NEW), stack(NEW), state=STATE, lock=OUR_LOCK, mode='maintenance')
    assert plan == {
        'action': 'resume',
        'errors': [],
        'resuming': True,
        'state': STATE,
        'from': {'primary': OLD, 'secondary': NEW},
        'target': NEW,
        'mode': 'maintenance',
        'lock': OUR_LOCK,
    }
    assert plan['state'] is not STATE and plan['lock'] is not OUR_LOCK  # copies, the inputs stay untouched


def test_plan_without_state_nor_lock():
    plan = up.decide(stack(OLD, NEW), stack(OLD, NEW))
    assert plan['resuming'] is False
    assert plan['state'] == {} and plan['lock'] == {}
    assert plan['mode'] == 'normal' and plan['target'] == NEW


def test_target_is_the_primarys_candidate_even_when_missing():
    primary = {'version_before': NEW, 'upgrade_available': False}
    assert up.decide(primary, stack(NEW))['target'] == ''


def test_own_lock_owner_is_configurable():
    lock = dict(OTHER_LOCK)
    assert up.decide(stack(OLD, NEW), stack(OLD, NEW), lock=lock, lock_owner='wazo-mode')['errors'] == []
    assert up.decide(stack(OLD, NEW), stack(OLD, NEW), lock=OUR_LOCK, lock_owner='wazo-mode')['errors'] == [
        'the maintenance lock is held by upgrade.yml since 2026-01-10T02:00:05Z (upgrade to 25.03)']


def test_the_table_decides_every_combination_of_facts():
    for facts in itertools.product((True, False), repeat=4):
        action, refusal = up._lookup(facts)
        assert action in up.ACTIONS
        assert refusal in (None, up.VERSIONS_DIFFER, up.TARGET_MOVED)
        assert (refusal is not None) == (not facts[0] and action == up.NONE)


def test_table_rows_are_parsed():
    assert list(up.DECISIONS) == [
        ((True, True, None, None), 'full', None),
        ((True, False, True, None), 'finish', None),
        ((True, False, False, None), 'none', None),
        ((False, None, True, True), 'resume', None),
        ((False, None, True, False), 'none', 'target_moved'),
        ((False, None, False, None), 'none', 'versions_differ'),
    ]


def test_a_bad_table_row_is_caught():
    with pytest.raises(AssertionError):
        up._parse_table('header\nyes yes - | upgrade - | three facts and an unknown action\n')


@pytest.mark.parametrize('primary, secondary, kwargs, message', [
    (None, stack(NEW), {}, 'the primary stack: expected the wazo_upgrade check-mode result (a dict), got NoneType'),
    (stack(NEW), {'failed': True, 'msg': 'boom'}, {}, 'the secondary stack: the wazo_upgrade result has no version_before'),
    (stack(NEW), stack(NEW), {'state': ['x']}, 'the saved state must be a dict'),
    (stack(NEW), stack(NEW), {'lock': 'wazo-mode'}, 'the maintenance lock must be a dict or None, got str'),
])
def test_unreadable_inputs(primary, secondary, kwargs, message):
    with pytest.raises(up.UpgradePlanError, match=message.replace('(', r'\(').replace(')', r'\)')):
        up.decide(primary, secondary, **kwargs)


@pytest.mark.parametrize('text, expected', [
    (None, {}),
    ('{"started": "2026-01-10T02:00:01Z", "from": "24.05", "target": "25.03"}\n', STATE),
    (b'{"target": "25.03"}', {'target': '25.03'}),
    ('{}', {}),
])
def test_parse_state(text, expected):
    assert up.parse_state(text) == expected


@pytest.mark.parametrize('text, message', [
    ('', 'upgrade-state.json is not JSON'),
    ('{"started": ', 'upgrade-state.json is not JSON'),
    ('["25.03"]', 'upgrade-state.json is not a JSON object'),
    ('null', 'upgrade-state.json is not a JSON object'),
])
def test_parse_state_refuses_what_is_not_ours(text, message):
    with pytest.raises(up.UpgradePlanError, match=message) as exc:
        up.parse_state(text)
    assert 'remove it if no upgrade is in progress' in str(exc.value)
