# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What upgrade.yml does: ``full``, ``resume``, ``finish`` or ``none``, or refuse.

:func:`decide` is a pure function of what ``roles/upgrade/tasks/plan.yml`` reads before any
change: the check-mode results of ``wazo.maintenance_mode.wazo_upgrade`` on both stacks, the saved
``upgrade-state.json`` of an unfinished run, the route mode and the maintenance lock
(``wazo.maintenance_mode.kamailio_mode``) and ``wazo_mm_upgrade_abort``. It returns the
``wazo_mm_upgrade_plan`` dict the role uses (keys ``action``, ``errors``, ``resuming``, ``state``,
``from``, ``target``, ``mode``, ``lock``). A non-empty ``errors`` means "refused before any change".

The actions, as ``roles/upgrade/tasks/main.yml`` runs them:

- ``full``: steps 0-10 (snapshot, lock, last sync, call logs, secondary, switch, drain, primary, back).
- ``resume``: a run stopped after the secondary was upgraded (drain timeout, primary upgrade): the
  same steps without the last sync and call logs (no replication across versions); the secondary,
  already at the target, is not upgraded again.
- ``finish``: both stacks already at the same version and an unfinished run saved: only steps 9-10
  (back to normal, BLF resync, restore, replicate, report).
- ``none``: nothing to do (or, with ``errors``, refused).

Stdlib only, no Ansible import: the ``wazo.maintenance_mode.upgrade_plan`` filter exposes it.

Differences from the Jinja template ``plan.j2`` it replaces (each where plan.j2 was wrong):

1. An abort (``abort=True``) is never refused. plan.j2 skipped the lock and route-mode checks on an
   abort but still refused it when the stacks run different versions without a saved state (or would
   upgrade to different candidates). That state is exactly what an abort leaves when it stops half-way
   (restore.yml deletes ``upgrade-state.json`` before it releases the lock and starts the HA check),
   so the abort could not be rerun to finish putting things back. An abort upgrades nothing; the
   action is still computed and shown.
2. ``full`` is refused whenever the route mode is not ``normal``, even when a saved state exists.
   plan.j2 only checked a fresh run. ``full`` upgrades the secondary, which in maintenance mode
   carries every new call: e.g. after a drain timeout (maintenance left on) the operator restores the
   secondary from its snapshot (same versions again), and a rerun would upgrade the secondary under
   traffic. The upgrade's own failure paths never leave ``full`` + saved state + maintenance (a
   failure before the switch leaves the mode normal), so no legitimate rerun is refused.
3. Different versions with a saved state whose secondary is not at the primary's candidate (apt's
   candidate moved since the run started) are refused, as before, but with a message that says so
   instead of "no upgrade of ours is in progress".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from collections.abc import Mapping

FULL = 'full'
RESUME = 'resume'
FINISH = 'finish'
NONE = 'none'
ACTIONS = (FULL, RESUME, FINISH, NONE)

DEFAULT_LOCK_OWNER = 'upgrade.yml'
NORMAL_MODE = 'normal'

# Refusals that come from the version comparison (the table's refusal column).
VERSIONS_DIFFER = 'versions_differ'
TARGET_MOVED = 'target_moved'
CANDIDATES_DIFFER = 'candidates_differ'

# The decision: the first row whose facts match wins ("-" matches anything). The facts, all read
# before any change:
#   same     both stacks run the same wazo-platform version (version_before)
#   upgrade  apt offers a newer version on at least one stack (upgrade_available)
#   saved    upgrade-state.json of an unfinished run exists (and is not empty)
#   at_cand  the secondary runs the version apt would install on the primary (the primary's candidate)
# The CHECKS below may add refusals to a row's action.
DECISION_TABLE = """
same  upgrade  saved  at_cand | action  refusal          | when
yes   yes      -      -       | full    -                | a new version (with a saved state: a run stopped before the switch)
yes   no       yes    -       | finish  -                | a run stopped after both stacks were upgraded
yes   no       no     -       | none    -                | nothing to upgrade
no    -        yes    yes     | resume  -                | a run stopped after the secondary was upgraded
no    -        yes    no      | none    target_moved     | apt's candidate on the primary moved since that run
no    -        no     -       | none    versions_differ  | the versions differ and no upgrade of ours is in progress
"""

ANY = None
_CELLS = {'yes': True, 'no': False, '-': ANY}


def _parse_table(text):
    """DECISION_TABLE as ``((same, upgrade, saved, at_cand), action, refusal)`` rows."""
    rows = []
    for line in text.strip().splitlines()[1:]:
        facts, outcome, _when = (part.split() for part in line.split('|'))
        action, refusal = outcome
        if len(facts) != 4 or action not in ACTIONS:
            raise AssertionError('bad decision row: %r' % line)
        rows.append((tuple(_CELLS[cell] for cell in facts), action, None if refusal == '-' else refusal))
    return tuple(rows)


DECISIONS = _parse_table(DECISION_TABLE)


class UpgradePlanError(ValueError):
    """The inputs cannot be read (not a wazo_upgrade result, a state file that is not JSON...)."""


def parse_state(text):
    """The content of ``upgrade-state.json`` as a dict; None (no file) gives ``{}``.

    Raises UpgradePlanError when the file is there but not a JSON object (upgrade.yml writes it
    atomically, so such a file is not one of ours).
    """
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise UpgradePlanError('upgrade-state.json is not JSON (%s): %r; remove it if no upgrade is in progress'
                               % (exc, text[:200]))
    if not isinstance(state, Mapping):
        raise UpgradePlanError('upgrade-state.json is not a JSON object: %r; remove it if no upgrade is in progress'
                               % (text[:200],))
    return dict(state)


def _stack(result, name):
    if not isinstance(result, Mapping):
        raise UpgradePlanError('the %s stack: expected the wazo_upgrade check-mode result (a dict), got %s'
                               % (name, type(result).__name__))
    if 'version_before' not in result:
        raise UpgradePlanError('the %s stack: the wazo_upgrade result has no version_before (failed or skipped?)'
                               % name)
    return result


def _matches(row, facts):
    return all(cell is ANY or cell == fact for cell, fact in zip(row, facts))


def _lookup(facts):
    for row_facts, action, refusal in DECISIONS:
        if _matches(row_facts, facts):
            return action, refusal
    raise AssertionError('no decision row for %r' % (facts,))  # pragma: no cover - the table is complete


def _refusal(reason, primary, secondary, state):
    """The error message of a refusal from the version comparison."""
    if reason == VERSIONS_DIFFER:
        return ('the stacks are on different versions (primary %s, secondary %s) and no upgrade of ours is in '
                'progress: upgrade them to the same version first'
                % (primary.get('version_before'), secondary.get('version_before')))
    if reason == TARGET_MOVED:
        return ('the stacks are on different versions (primary %s, secondary %s) and the secondary is not at the '
                'version the primary would now upgrade to (%s): the unfinished upgrade (started %s, target %s) '
                'cannot resume; pin the primary to the secondary\'s version (or restore the secondary from its '
                'snapshot) first'
                % (primary.get('version_before'), secondary.get('version_before'), primary.get('candidate'),
                   state.get('started', '?'), state.get('target', '?')))
    if reason == CANDIDATES_DIFFER:
        return ('the stacks would upgrade to different versions (primary %s, secondary %s): check their apt sources'
                % (primary.get('candidate'), secondary.get('candidate')))
    raise AssertionError(reason)  # pragma: no cover


def _candidates_differ(primary, secondary, lock, mode, lock_owner):
    if primary.get('candidate') != secondary.get('candidate'):
        return _refusal(CANDIDATES_DIFFER, primary, secondary, {})
    return None


def _lock_not_ours(primary, secondary, lock, mode, lock_owner):
    if lock and lock.get('owner', '') != lock_owner:
        return 'the maintenance lock is held by %s since %s (%s)' % (
            lock.get('owner', '?'), lock.get('since', '?'), lock.get('reason', ''))
    return None


def _mode_not_normal(primary, secondary, lock, mode, lock_owner):
    if mode != NORMAL_MODE:
        return 'the route mode is %s, not normal: traffic is not on the primary' % (mode,)
    return None


# Checks once the action is known, in this order (their errors follow the table's refusal); none of
# them applies to an abort.
CHECKS = (
    # (applies to, refused when)
    ((FULL,), _candidates_differ),  # the two stacks would upgrade to different versions
    (ACTIONS, _lock_not_ours),  # the maintenance lock is held by another owner (e.g. wazo-mode)
    ((FULL,), _mode_not_normal),  # full upgrades the secondary: traffic must be on the primary
)


def decide(primary, secondary, state=None, lock=None, mode=NORMAL_MODE, abort=False, lock_owner=DEFAULT_LOCK_OWNER):
    """Decide what upgrade.yml does.

    :param primary: the primary's ``wazo_upgrade`` check-mode result (``version_before``,
        ``candidate``, ``upgrade_available``; other keys are ignored).
    :param secondary: the same for the secondary.
    :param state: the saved state of an unfinished run (``upgrade-state.json`` as a dict:
        ``started``, ``from``, ``target``), None or ``{}`` when there is none.
    :param lock: the maintenance lock (``owner``, ``reason``, ``since``), None when free.
    :param mode: the running route mode, ``normal`` or ``maintenance``.
    :param abort: ``wazo_mm_upgrade_abort``: put back what a failed run stopped; never refused.
    :param lock_owner: the lock owner that is ours (a lock held by it is not a refusal).
    :returns: ``{'action', 'errors', 'resuming', 'state', 'from', 'target', 'mode', 'lock'}``;
        ``target`` is the primary's candidate.
    :raises UpgradePlanError: when a stack result, the state or the lock is not a dict.
    """
    primary = _stack(primary, 'primary')
    secondary = _stack(secondary, 'secondary')
    if state is None:
        state = {}
    if not isinstance(state, Mapping):
        raise UpgradePlanError('the saved state must be a dict (upgrade-state.json), got %s' % type(state).__name__)
    if lock is not None and not isinstance(lock, Mapping):
        raise UpgradePlanError('the maintenance lock must be a dict or None, got %s' % type(lock).__name__)
    state = dict(state)
    lock = dict(lock or {})

    facts = (
        primary.get('version_before') == secondary.get('version_before'),
        bool(primary.get('upgrade_available')) or bool(secondary.get('upgrade_available')),
        bool(state),
        secondary.get('version_before') == primary.get('candidate'),
    )
    action, refusal = _lookup(facts)

    errors = []
    if refusal:
        errors.append(_refusal(refusal, primary, secondary, state))
    for actions, check in CHECKS:
        if action in actions:
            error = check(primary, secondary, lock, mode, lock_owner)
            if error:
                errors.append(error)
    if abort:
        errors = []

    return {
        'action': action,
        'errors': errors,
        'resuming': bool(state),
        'state': state,
        'from': {'primary': primary.get('version_before'), 'secondary': secondary.get('version_before')},
        'target': primary.get('candidate', ''),
        'mode': mode,
        'lock': lock,
    }
