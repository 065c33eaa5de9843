# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy's route mode: which stack takes new calls, persisted so a Kamailio restart keeps it.

* ``normal`` (value 0, upstream's): new calls to the primary, dispatcher set 1.
  ``maintenance`` (value 2): new calls to the secondary, dispatcher set 2.
* The running value is Kamailio's ``$shv(routemode)``; the persisted one is ``routemode.cfg`` in the state
  directory, included by kamailio.cfg (``modparam("pv", "shvset", "routemode=i:N")``).
* ``switch()`` is the one way to change it, used by ``kamailio_mode``, ``wazo-mode`` and the HA check, in
  the one documented order: **file first** (a Kamailio restart from that moment on comes back in the new
  mode), **then** the running value over RPC, **then** both read back. If Kamailio refuses the new value,
  the file is put back to the running mode, so the two never disagree silently.

Standard library only: installed on the proxy beside ``wazo-mode`` and ``wazo-ha-check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write, read_text
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import (
    KamailioError,
    KamailioRPCFault,
)

DEFAULT_STATE_DIR = '/var/lib/wazo-maintenance'
ROUTEMODE_FILE = 'routemode.cfg'
ROUTEMODE_VAR = 'routemode'

# Upstream values of $shv(routemode).
MODES = {'normal': 0, 'maintenance': 2}
MODE_NAMES = dict((v, k) for k, v in MODES.items())
# The dispatcher set of each stack (dispatcher.list written by the kamailio_proxy role).
STACK_SET = {'primary': 1, 'secondary': 2}
# The stack that takes new calls in each mode, and the one a switch to that mode leaves.
MODE_STACK = {'normal': 'primary', 'maintenance': 'secondary'}
LEFT_STACK = {'normal': 'secondary', 'maintenance': 'primary'}

_LINE = re.compile(r'^\s*modparam\(\s*"pv"\s*,\s*"shvset"\s*,\s*"routemode=i:(\d+)"\s*\)\s*$')


class RouteModeError(KamailioError):
    """The persisted route mode file or the running value is not what this collection writes."""


def mode_name(value):
    """0 -> 'normal', 2 -> 'maintenance'; anything else -> RouteModeError."""
    try:
        return MODE_NAMES[int(value)]
    except (KeyError, TypeError, ValueError):
        raise RouteModeError('unknown route mode value %r (expected 0 = normal or 2 = maintenance)' % (value,))


def mode_value(name):
    """'normal' -> 0, 'maintenance' -> 2; anything else -> RouteModeError."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise RouteModeError('unknown route mode %r (expected one of %s)' % (name, ', '.join(sorted(MODES))))


def stack_set(stack):
    """Dispatcher set of ``stack`` ('primary' / 'secondary')."""
    try:
        return STACK_SET[stack]
    except KeyError:
        raise RouteModeError('unknown stack %r (expected primary or secondary)' % (stack,))


def _name(mode):
    """A mode given by name or by value, as a validated name."""
    if isinstance(mode, str):
        mode_value(mode)
        return mode
    return mode_name(mode)


# -- the running value -------------------------------------------------------------------------
def _no_shv(exc):
    return RouteModeError('Kamailio has no $shv(%s): it does not run the wazo.maintenance_mode configuration (%s)'
                          % (ROUTEMODE_VAR, exc))


def running_mode(rpc):
    """Kamailio's running route mode as a name."""
    try:
        return mode_name(rpc.shv_get(ROUTEMODE_VAR))
    except KamailioRPCFault as exc:
        if exc.code == 404:
            raise _no_shv(exc)
        raise


def set_running(rpc, name):
    """Set only the running value and read it back (no file: switch() is the way to change the mode)."""
    try:
        rpc.shv_set_int(ROUTEMODE_VAR, mode_value(name))
    except KamailioRPCFault as exc:
        if exc.code == 404:
            raise _no_shv(exc)
        raise
    now = running_mode(rpc)
    if now != name:
        raise RouteModeError('route mode set to %s but Kamailio runs %s (read back)' % (name, now))
    return now


# -- the persisted value -----------------------------------------------------------------------
def routemode_file(state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, ROUTEMODE_FILE)


def render_routemode(mode):
    value = mode_value(_name(mode))
    return ('# Route mode persisted by wazo.maintenance_mode (kamailio_mode, wazo-mode, HA check).\n'
            '# 0 = normal (primary), 2 = maintenance (secondary). Included by kamailio.cfg.\n'
            'modparam("pv", "shvset", "routemode=i:%d")\n' % value)


def read_persisted_mode(state_dir=DEFAULT_STATE_DIR):
    """Mode name in routemode.cfg, or None if the file does not exist."""
    path = routemode_file(state_dir)
    text = read_text(path)
    if text is None:
        return None
    values = [m.group(1) for m in (_LINE.match(line) for line in text.splitlines()) if m]
    if len(values) != 1:
        raise RouteModeError('%s: expected one modparam("pv", "shvset", "routemode=i:N") line, found %d'
                             % (path, len(values)))
    return mode_name(values[0])


def write_persisted_mode(mode, state_dir=DEFAULT_STATE_DIR):
    """Atomically write routemode.cfg for ``mode`` (name or value). Returns True if it changed."""
    text = render_routemode(mode)
    path = routemode_file(state_dir)
    if read_text(path) == text:
        return False
    atomic_write(path, text)
    return True


def persisted_mtime(state_dir=DEFAULT_STATE_DIR):
    """When routemode.cfg was last written (epoch seconds), None if it does not exist."""
    try:
        return os.stat(routemode_file(state_dir)).st_mtime
    except OSError:
        return None


# -- the switch --------------------------------------------------------------------------------
def state(rpc, state_dir=DEFAULT_STATE_DIR):
    """``{'running': name, 'persisted': name or None}``."""
    return {'running': running_mode(rpc), 'persisted': read_persisted_mode(state_dir)}


def switch(rpc, mode, state_dir=DEFAULT_STATE_DIR):
    """Put the proxy in ``mode`` (name or value): file first, then Kamailio, then both read back.

    Returns ``(previous_running_mode, mode)``. Raises RouteModeError / KamailioError on failure, after
    putting the file back to the running mode when Kamailio refused the new one.
    """
    name = _name(mode)
    previous = running_mode(rpc)
    wrote = write_persisted_mode(name, state_dir)
    try:
        now = set_running(rpc, name)
    except KamailioError:
        if wrote:
            try:
                write_persisted_mode(running_mode(rpc), state_dir)
            except (KamailioError, IOError, OSError):
                pass
        raise
    persisted = read_persisted_mode(state_dir)
    if persisted != now:
        raise RouteModeError('route mode %s is running but %s holds %s' % (now, routemode_file(state_dir), persisted))
    return previous, now
