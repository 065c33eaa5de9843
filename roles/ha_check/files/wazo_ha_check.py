#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wazo-ha-check: fail over to the secondary Wazo stack when the primary stops answering SIP.

Runs on the Kamailio proxy as ``wazo-ha-check.service`` and replaces upstream's cron + ping script.

* Health: a SIP ``OPTIONS`` to the primary's udp/5060 every ``probe_interval`` seconds (0.5 s), each
  with a ``probe_timeout`` (0.4 s). Any final answer below 500 counts as alive (a 401/403/404 still
  proves Asterisk runs); a timeout, an ICMP "port unreachable" or a 5xx/6xx is a failure. The
  secondary is probed the same way (a failover onto a dead secondary would only lengthen the outage).
* Failover: ``down_after`` consecutive failures (3 -> about 1.5-2 s) -> route mode 2 (maintenance,
  traffic to dispatcher set 2) through the collection's Kamailio RPC client, persisted in
  routemode.cfg; *then* the secondary-side commands upstream runs (service restarts,
  ``wazo-confgen ... --invalidate``, ``core reload``, agents relog) over SSH with paramiko, each
  logged with its result, in a worker thread: a failing command never delays or undoes the switch.
* Failback: only a failover the HA check made itself, only after the primary answered every probe for
  ``failback_delay`` seconds (60 s), at least ``min_transition_interval`` after the previous switch.
* The maintenance lock (``maintenance.lock``, taken by upgrade.yml and ``wazo-mode``) pauses every
  decision: no failover, no failback. A route mode changed by anybody else (operator maintenance) is
  never undone.
* State for ``wazo-mode status`` in ``/var/lib/wazo-maintenance/ha-check.json`` (see ``StateFile``).
* Every transition and every change of health is logged with its reason on stdout (the journal,
  with ``<N>`` syslog level prefixes under systemd).
* Never dies silently: an error in a round (a lock file it cannot read, a state directory it cannot
  write, a Kamailio RPC error, an exception while probing) is logged and the next round runs. Under
  systemd (``Type=notify``) it says READY once the first round ran and WATCHDOG after every round
  through ``$NOTIFY_SOCKET``: a daemon that hangs is killed and restarted by systemd (``WatchdogSec``).
* A switch it could not finish (Kamailio refused it, its reply was lost, the daemon was killed in the
  middle) is written ahead in the state file as ``pending_switch`` and settled on the next rounds:
  completed if it is still needed, undone otherwise. The maintenance lock is read again right before a
  switch: a lock taken meanwhile wins, the switch is not made.

Usage: wazo-ha-check [--config FILE] | --check-config FILE | --probe HOST[:PORT]
"""

from __future__ import absolute_import, division, print_function

import argparse
import faulthandler
import ipaddress
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback

__metaclass__ = type

DEFAULT_CONFIG = '/etc/wazo-maintenance/ha-check.conf'
# Where the kamailio_proxy role installs the collection's shared code (under its import path); the unit
# sets WAZO_MM_LIBDIR when it is elsewhere.
DEFAULT_LIBDIR = '/usr/local/lib/wazo-maintenance'
_LIBDIR = os.environ.get('WAZO_MM_LIBDIR') or DEFAULT_LIBDIR
if os.path.isdir(_LIBDIR) and _LIBDIR not in sys.path:
    sys.path.insert(0, _LIBDIR)

# pylint: disable=wrong-import-position
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock  # noqa: E402
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode  # noqa: E402
from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write  # noqa: E402
from ansible_collections.wazo.maintenance_mode.plugins.module_utils._ini_section import read_section  # noqa: E402
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import (  # noqa: E402
    KamailioError,
    KamailioRPC,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import OptionsProber  # noqa: E402
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_ssh import (  # noqa: E402
    StackSSHError,
    ssh_run,
)

NORMAL, MAINTENANCE = route_mode.MODES['normal'], route_mode.MODES['maintenance']
MODE_NAMES = route_mode.MODE_NAMES

# States reported in the state file.
S_STARTING = 'starting'
S_NORMAL = 'normal'            # mode 0, traffic to the primary
S_FAILOVER = 'failover'        # mode 2 set by the HA check: it will fail back
S_OPERATOR = 'operator'        # mode 2 set by somebody else: never undone by the HA check
S_PAUSED = 'paused'            # maintenance lock held: no decision at all
S_ERROR = 'error'              # Kamailio unreachable or mode unreadable

DEFAULT_FAILOVER_COMMANDS = [
    'systemctl restart wazo-agid',
    'systemctl restart wazo-agentd',
    'systemctl restart wazo-call-logd',
    'systemctl restart wazo-confd',
    'systemctl restart wazo-dird',
    'wazo-confgen asterisk/pjsip.conf --invalidate',
    "asterisk -rx 'core reload'",
    "wazo-agentd-cli -c 'relog all --timeout 60'",
]
# Output that means failure even when the exit code says 0.
FAILURE_MARKERS = ('Unable to connect to remote asterisk', 'does /var/run/asterisk/asterisk.ctl exist')


def iso(wall=None):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() if wall is None else wall))


# -- logging ------------------------------------------------------------------------------------
class Log:
    """Lines on stdout; under systemd (JOURNAL_STREAM set) prefixed with the syslog level <N>."""

    LEVELS = {'error': 3, 'warning': 4, 'notice': 5, 'info': 6, 'debug': 7}

    def __init__(self, stream=None, prefix=None, debug=False):
        self.stream = stream or sys.stdout
        self.prefix = bool(os.environ.get('JOURNAL_STREAM')) if prefix is None else prefix
        self.debug_enabled = debug
        self.lock = threading.Lock()
        self.lines = []   # kept for tests (bounded)

    def _emit(self, level, msg):
        if level == 'debug' and not self.debug_enabled:
            return
        line = ('<%d>' % self.LEVELS[level] if self.prefix else '%s %s: ' % (iso(), level.upper())) + msg
        with self.lock:
            self.lines.append((level, msg))
            del self.lines[:-1000]
            try:
                self.stream.write(line + '\n')
                self.stream.flush()
            except (IOError, OSError, ValueError):
                pass

    def error(self, msg):
        self._emit('error', msg)

    def warning(self, msg):
        self._emit('warning', msg)

    def notice(self, msg):
        self._emit('notice', msg)

    def info(self, msg):
        self._emit('info', msg)

    def debug(self, msg):
        self._emit('debug', msg)


# -- configuration ------------------------------------------------------------------------------
class ConfigError(Exception):
    pass


class Config:
    """``/etc/wazo-maintenance/ha-check.conf`` (INI). Every key has a default except the addresses."""

    SECTION = 'ha-check'

    def __init__(self, **kw):
        self.primary = kw.get('primary')
        self.primary_port = int(kw.get('primary_port', 5060))
        self.secondary = kw.get('secondary')
        self.secondary_port = int(kw.get('secondary_port', 5060))
        self.probe_interval = float(kw.get('probe_interval', 0.5))
        self.probe_timeout = float(kw.get('probe_timeout', 0.4))
        self.down_after = int(kw.get('down_after', 3))
        self.failback_delay = float(kw.get('failback_delay', 60))
        self.min_transition_interval = float(kw.get('min_transition_interval', 10))
        self.require_secondary_healthy = bool(kw.get('require_secondary_healthy', True))
        self.state_dir = kw.get('state_dir', '/var/lib/wazo-maintenance')
        self.state_file = kw.get('state_file') or os.path.join(self.state_dir, 'ha-check.json')
        self.heartbeat = float(kw.get('heartbeat', 5))
        self.rpc_transport = kw.get('rpc_transport', 'dgram')
        self.rpc_path = kw.get('rpc_path') or None
        self.rpc_timeout = float(kw.get('rpc_timeout', 1.0))
        self.ssh_user = kw.get('ssh_user', 'root')
        self.ssh_key = kw.get('ssh_key', '/root/.ssh/id_ed25519')
        self.ssh_port = int(kw.get('ssh_port', 22))
        self.ssh_known_hosts = kw.get('ssh_known_hosts') or None
        self.ssh_timeout = float(kw.get('ssh_timeout', 120))
        self.failover_commands = list(kw.get('failover_commands', DEFAULT_FAILOVER_COMMANDS))
        self.failback_commands = list(kw.get('failback_commands', []))
        self.debug = bool(kw.get('debug', False))

    @property
    def detection_time(self):
        """Worst case from the primary's last answer to the failover decision, in seconds."""
        return self.down_after * self.probe_interval + self.probe_timeout

    def validate(self):
        errors = []
        for name in ('primary', 'secondary'):
            value = getattr(self, name)
            if not value:
                errors.append('%s: missing' % name)
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                errors.append('%s: %r is not an IP address' % (name, value))
        if self.primary and self.primary == self.secondary and self.primary_port == self.secondary_port:
            errors.append('primary and secondary are the same address')
        for name in ('primary_port', 'secondary_port', 'ssh_port'):
            if not 0 < getattr(self, name) < 65536:
                errors.append('%s: out of range' % name)
        if not 0.05 <= self.probe_interval <= 60:
            errors.append('probe_interval: must be between 0.05 and 60 s')
        if not 0.01 <= self.probe_timeout <= self.probe_interval:
            errors.append('probe_timeout: must be between 0.01 s and probe_interval')
        if self.down_after < 1:
            errors.append('down_after: must be >= 1')
        if self.failback_delay < 0:
            errors.append('failback_delay: must be >= 0')
        if self.min_transition_interval < 0:
            errors.append('min_transition_interval: must be >= 0')
        if self.rpc_transport not in ('dgram', 'fifo'):
            errors.append('rpc_transport: dgram or fifo')
        if self.rpc_timeout <= 0:
            errors.append('rpc_timeout: must be > 0')
        if self.ssh_timeout <= 0:
            errors.append('ssh_timeout: must be > 0')
        if errors:
            raise ConfigError('; '.join(errors))
        return self

    @classmethod
    def load(cls, path):
        sec = read_section(path, cls.SECTION, set(cls().__dict__), ConfigError)
        kw = {}
        try:
            for key in sec:
                if key in ('require_secondary_healthy', 'debug'):
                    kw[key] = sec.getboolean(key)
                elif key in ('failover_commands', 'failback_commands'):
                    kw[key] = [line.strip() for line in sec[key].splitlines() if line.strip()]
                else:
                    kw[key] = sec[key].strip()
            return cls(**kw).validate()
        except ValueError as exc:
            raise ConfigError('%s: %s' % (path, exc))


# -- state file ---------------------------------------------------------------------------------
class StateFile:
    """``/var/lib/wazo-maintenance/ha-check.json``, written atomically (see README for the format)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (IOError, OSError, ValueError):
            return {}

    def save(self, data):
        directory = os.path.dirname(self.path) or '.'
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + '\n')


# -- the proxy side: Kamailio route mode and the maintenance lock -------------------------------
class BackendError(Exception):
    pass


class KamailioBackend:
    """Route mode, lock and SSH through the collection's shared code (one implementation of each)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.rpc = KamailioRPC(cfg.rpc_transport, cfg.rpc_path, cfg.rpc_timeout)

    # Any exception of the shared code becomes a BackendError: the round logs it and the next one retries.
    def get_mode(self):
        try:
            return route_mode.mode_value(route_mode.running_mode(self.rpc))
        except KamailioError as exc:
            raise BackendError(str(exc))
        except Exception as exc:  # pylint: disable=broad-except
            raise BackendError('unexpected %s: %s' % (type(exc).__name__, exc))

    def set_mode(self, value):
        """The one route switch (routemode.cfg first, then Kamailio, both read back)."""
        try:
            route_mode.switch(self.rpc, MODE_NAMES[value], self.cfg.state_dir)
        except (IOError, OSError, KamailioError) as exc:
            raise BackendError(str(exc))
        except Exception as exc:  # pylint: disable=broad-except
            raise BackendError('unexpected %s: %s' % (type(exc).__name__, exc))

    def persisted_mode_mtime(self):
        try:
            return route_mode.persisted_mtime(self.cfg.state_dir)
        except Exception:  # pylint: disable=broad-except
            return None

    def get_lock(self):
        try:
            return maintenance_lock.read_lock(self.cfg.state_dir)
        except Exception as exc:  # pylint: disable=broad-except
            # An unreadable lock (I/O error, bytes that are not text, ...) counts as held: never act on a guess.
            return {'owner': 'unknown', 'since': None,
                    'reason': 'cannot read %s (%s: %s): remove or repair it'
                              % (maintenance_lock.lock_file(self.cfg.state_dir), type(exc).__name__, exc)}

    def ssh_run(self, host, command):
        try:
            return ssh_run(host, command, user=self.cfg.ssh_user, key_file=self.cfg.ssh_key,
                           port=self.cfg.ssh_port, timeout=self.cfg.ssh_timeout,
                           known_hosts=self.cfg.ssh_known_hosts)
        except StackSSHError as exc:
            raise BackendError(str(exc))


# -- remote actions (failover / failback commands), in a worker thread --------------------------
class ActionRunner:
    """Runs command batches over SSH one after the other, never blocking the decision loop."""

    def __init__(self, run, log, on_done=None, clock=time.monotonic):
        self.run = run            # run(host, command) -> (rc, out, err); raises BackendError
        self.log = log
        self.on_done = on_done    # on_done(batch_name, results)
        self.clock = clock
        self.queue = queue.Queue()
        self.thread = None

    def submit(self, name, host, commands):
        if not commands:
            return
        self.queue.put((name, host, list(commands)))
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._worker, name='ha-actions', daemon=True)
            self.thread.start()

    def wait(self, timeout=None):
        """Tests: wait until the queue is drained."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.thread is not None and self.thread.is_alive():
            self.thread.join(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
            if end is not None and time.monotonic() >= end:
                return False
        return True

    def _worker(self):
        while True:
            try:
                name, host, commands = self.queue.get(timeout=1)
            except queue.Empty:
                return
            self.run_batch(name, host, commands)

    def run_batch(self, name, host, commands):
        results = []
        total = len(commands)
        self.log.notice('%s actions on %s: %d commands' % (name, host, total))
        for i, command in enumerate(commands, 1):
            start = self.clock()
            try:
                rc, out, err = self.run(host, command)
                output = (out + err).strip()
                ok = rc == 0 and not any(m in output for m in FAILURE_MARKERS)
                detail = 'rc=%s' % rc
            except Exception as exc:  # pylint: disable=broad-except
                ok, output, detail = False, '', 'not run: %s' % exc
            took = self.clock() - start
            tail = output.replace('\n', ' | ')[-300:]
            msg = '%s action %d/%d on %s: `%s` -> %s %s (%.1f s)%s' % (
                name, i, total, host, command, 'OK' if ok else 'FAILED', detail, took,
                (': ' + tail) if tail else '')
            (self.log.info if ok else self.log.error)(msg)
            results.append({'command': command, 'ok': ok, 'result': detail, 'seconds': round(took, 2),
                            'output': tail, 'at': iso()})
        failed = sum(1 for r in results if not r['ok'])
        (self.log.notice if not failed else self.log.warning)(
            '%s actions on %s done: %d/%d OK' % (name, host, total - failed, total))
        if self.on_done:
            self.on_done(name, host, results)
        return results


# -- the decision logic -------------------------------------------------------------------------
class HACheck:
    """One ``tick()`` per probe round. Pure logic around injected backend, clock, runner and state file."""

    def __init__(self, cfg, backend, log, state_store, runner=None, clock=time.monotonic, wall=time.time):
        self.cfg = cfg
        self.backend = backend
        self.log = log
        self.store = state_store
        self.clock = clock
        self.wall = wall
        self.runner = runner
        self.lock_ = threading.Lock()   # the runner's callback writes actions into the state

        saved = state_store.load()
        self.owned = bool(saved.get('failover_owned'))   # mode 2 was set by us
        # A switch begun and not finished (written ahead of it): {kind, from, to, at, epoch}.
        pending = saved.get('pending_switch')
        self.pending = pending if isinstance(pending, dict) and pending.get('to') in route_mode.MODES \
            and pending.get('from') in route_mode.MODES else None
        self.state = S_STARTING
        self.reason = 'starting'
        self.since_wall = self.wall()
        self.last_transition = saved.get('last_transition')
        self.transitions = int(saved.get('transitions', 0))
        self.last_actions = saved.get('last_actions')
        self.last_transition_mono = None     # min_transition_interval counts from our own start too
        self.start_mono = clock()
        self.mode = None                     # last mode read from Kamailio
        self.expected_mode = None            # mode we set or last accepted
        self.lock = None
        self.paused_mode_changed = False
        # health
        self.p_failures = 0
        self.p_healthy_since = None
        self.p_last = None
        self.p_declared_down = False
        self.s_recent = []                   # last down_after results of the secondary (bools)
        self.s_last = None
        self._last_save = None
        self._dirty = True
        self._notes = {}                     # once-per-episode log keys
        self._error = None

    # -- helpers
    def _once(self, key, level, msg):
        if self._notes.get(key) != msg:
            self._notes[key] = msg
            getattr(self.log, level)(msg)

    def _forget(self, key):
        self._notes.pop(key, None)

    def _set_state(self, state, reason):
        if state != self.state or reason != self.reason:
            self.state, self.reason = state, reason
            self.since_wall = self.wall()
            self._dirty = True

    def secondary_healthy(self):
        return any(self.s_recent)

    def _transition_allowed(self, now):
        ref = self.last_transition_mono if self.last_transition_mono is not None else None
        if ref is None:
            return True, 0.0
        left = self.cfg.min_transition_interval - (now - ref)
        return left <= 0, max(0.0, left)

    # -- health bookkeeping
    def _record_probes(self, now, primary, secondary):
        self.p_last = primary
        if primary.ok:
            if self.p_failures:
                if self.p_declared_down:
                    self.log.notice('primary %s answers SIP again (%s) after %d failed probes'
                                    % (self.cfg.primary, primary.describe(), self.p_failures))
                elif self.p_failures > 1:
                    self.log.info('primary %s answered again (%s) after %d failed probes'
                                  % (self.cfg.primary, primary.describe(), self.p_failures))
            self.p_failures = 0
            if self.p_healthy_since is None:
                self.p_healthy_since = now
            self.p_declared_down = False
        else:
            self.p_failures += 1
            if self.p_healthy_since is not None and self.owned and self.mode == MAINTENANCE and \
                    self.p_failures == 1 and now - self.p_healthy_since > self.cfg.probe_interval * 2:
                self.log.warning('primary %s failed a probe (%s) after %.1f s healthy: failback timer reset'
                                 % (self.cfg.primary, primary.describe(), now - self.p_healthy_since))
            self.p_healthy_since = None
            if self.p_failures == self.cfg.down_after:
                self.p_declared_down = True
                self.log.warning('primary %s is DOWN: %d consecutive OPTIONS probes failed (last: %s)'
                                 % (self.cfg.primary, self.p_failures, primary.describe()))
                self._dirty = True
        if secondary is not None:
            if self.s_last is not None and self.s_last.ok != secondary.ok:
                (self.log.info if secondary.ok else self.log.warning)(
                    'secondary %s %s (%s)' % (self.cfg.secondary, 'answers SIP again' if secondary.ok
                                              else 'stopped answering SIP', secondary.describe()))
            self.s_last = secondary
            self.s_recent = (self.s_recent + [secondary.ok])[-self.cfg.down_after:]

    # -- one round
    def tick(self, primary, secondary=None):
        now = self.clock()
        self._record_probes(now, primary, secondary)

        lock = self.backend.get_lock()
        try:
            mode = self.backend.get_mode()
            self._error = None
            self._forget('mode-error')
        except BackendError as exc:
            self._error = str(exc)
            self._once('mode-error', 'error', 'cannot read the route mode from Kamailio: %s' % exc)
            self._set_state(S_ERROR, 'Kamailio unreachable: %s' % exc)
            self.lock = lock
            self._save(now)
            return
        self._observe_mode(mode, lock)
        self.mode = mode

        if lock is not None:
            self._pause(lock, mode)
        else:
            if self.lock is not None:
                self.log.notice('maintenance lock released (was held by %s): HA check resumed'
                                % (self.lock.get('owner'),))
                self._forget('paused')
            self.lock = None
            if self.pending is not None:
                self._settle(now)
            else:
                self._decide(now, mode)
        self._save(now)

    def round_failed(self, exc):
        """A round ended with an exception (logged by the caller): say so in the state file."""
        self._set_state(S_ERROR, 'round failed: %s: %s' % (type(exc).__name__, exc))
        self._save(self.clock())

    def _observe_mode(self, mode, lock):
        if self.expected_mode is None and self.pending is not None:    # first reading, a switch unfinished
            self.expected_mode = mode
            if self._mode_rewritten_since(self.pending.get('epoch')):
                self.log.notice('routemode.cfg was rewritten after the unfinished %s of the previous HA check run '
                                '(while it was not running): the route mode now belongs to an operator'
                                % self.pending.get('kind'))
                self.pending = None
                self.owned = False
            else:
                pend = self.pending
                self.log.notice('started with an unfinished %s (%s -> %s, begun %s): it is completed if still '
                                'needed, undone otherwise'
                                % (pend.get('kind'), pend.get('from'), pend.get('to'), pend.get('at')))
            self._dirty = True
            return
        if self.expected_mode is None:          # first reading since start
            self.expected_mode = mode
            if mode == MAINTENANCE and self.owned:
                self.log.notice('started with route mode maintenance set by an earlier HA check failover: '
                                'it will fail back once the primary is healthy for %g s' % self.cfg.failback_delay)
            elif mode == MAINTENANCE:
                self.log.notice('started with route mode maintenance set by an operator: '
                                'the HA check will not fail back')
            if mode == MAINTENANCE and self.owned and self._mode_rewritten_since_our_switch():
                self.log.notice('routemode.cfg was rewritten after the HA check\'s failover (while it was not '
                                'running): the maintenance mode now belongs to an operator, no failback')
                self.owned = False
            self.owned = self.owned and mode == MAINTENANCE
            return
        if mode != self.expected_mode and self.pending is not None and lock is None:
            # Between the two modes of our own unfinished switch: not somebody else's change.
            self.log.info('route mode %s -> %s during the unfinished %s'
                          % (MODE_NAMES.get(self.expected_mode), MODE_NAMES.get(mode), self.pending.get('kind')))
            self.expected_mode = mode
            self._dirty = True
            return
        if mode != self.expected_mode:
            who = 'by the lock holder %s' % lock.get('owner') if lock else 'outside the HA check'
            self.log.notice('route mode changed %s -> %s %s'
                            % (MODE_NAMES.get(self.expected_mode), MODE_NAMES.get(mode), who))
            if self.owned:
                self.log.notice('the HA check no longer owns the failover: it will not fail back')
            self.owned = False
            self.expected_mode = mode
            self._dirty = True

    def _mode_rewritten_since_our_switch(self):
        return self._mode_rewritten_since((self.last_transition or {}).get('epoch'))

    def _mode_rewritten_since(self, epoch):
        getter = getattr(self.backend, 'persisted_mode_mtime', None)
        if getter is None or epoch is None:
            return False
        mtime = getter()
        # our own write comes within a few RPC round trips of the epoch
        return mtime is not None and mtime > float(epoch) + max(2.0, 3 * self.cfg.rpc_timeout)

    def _pause(self, lock, mode):
        if self.pending is not None:
            # The lock holder is in charge now: the HA check neither completes nor undoes its switch.
            self.log.warning('maintenance lock taken by %s while the HA check\'s %s (%s -> %s) was unfinished; '
                             'Kamailio runs %s: left to the lock holder, the HA check will not fail it back'
                             % (lock.get('owner'), self.pending.get('kind'), self.pending.get('from'),
                                self.pending.get('to'), MODE_NAMES.get(mode)))
            self.owned = self.pending.get('kind') == 'failback' and mode == MAINTENANCE
            self.pending = None
            self.expected_mode = mode
            self._dirty = True
        if self.lock is None or self.lock.get('owner') != lock.get('owner'):
            self.log.notice('HA check PAUSED: maintenance lock held by %s since %s (%s); no failover, no failback '
                            'until it is released' % (lock.get('owner'), lock.get('since'), lock.get('reason')))
        self.lock = lock
        if self.p_declared_down and mode == NORMAL:
            self._once('paused-down', 'warning', 'primary %s is down but the maintenance lock is held by %s: '
                       'not failing over (the operator is in charge)' % (self.cfg.primary, lock.get('owner')))
        elif not self.p_declared_down:
            self._forget('paused-down')
        self._set_state(S_PAUSED, 'maintenance lock held by %s: %s' % (lock.get('owner'), lock.get('reason')))

    def _decide(self, now, mode):
        if mode == MAINTENANCE and not self.owned:
            self._set_state(S_OPERATOR, 'route mode maintenance set by an operator: not failed back by the HA check')
            return
        if mode == NORMAL:
            self._forget('failback-wait')
            if not self.p_declared_down:
                self._forget('failover-blocked')
                self._set_state(S_NORMAL, 'primary %s healthy' % self.cfg.primary
                                if self.p_failures == 0 else 'primary %s: %d failed probe(s)'
                                % (self.cfg.primary, self.p_failures))
                return
            if self.cfg.require_secondary_healthy and not self.secondary_healthy():
                msg = 'primary %s is down but secondary %s does not answer SIP either: not failing over' % (
                    self.cfg.primary, self.cfg.secondary)
                self._once('failover-blocked', 'error', msg)
                self._set_state(S_NORMAL, msg)
                return
            allowed, left = self._transition_allowed(now)
            if not allowed:
                msg = 'primary down: failover deferred %.1f s (min_transition_interval %g s)' % (
                    left, self.cfg.min_transition_interval)
                self._once('failover-blocked', 'warning', msg)
                self._set_state(S_NORMAL, msg)
                return
            self._failover(now)
            return
        # mode == MAINTENANCE and owned: our failover
        if self.p_healthy_since is None:
            self._set_state(S_FAILOVER, 'primary %s down (%s): traffic on secondary %s'
                            % (self.cfg.primary, self.p_last.describe() if self.p_last else '?', self.cfg.secondary))
            return
        healthy_for = now - self.p_healthy_since
        if healthy_for < self.cfg.failback_delay:
            self._once('failback-wait', 'notice', 'primary %s healthy again: failback after %g s of continuous health'
                       % (self.cfg.primary, self.cfg.failback_delay))
            self._set_state(S_FAILOVER, 'primary healthy again, failback pending (healthy for %g s required)'
                            % self.cfg.failback_delay)
            return
        allowed, left = self._transition_allowed(now)
        if not allowed:
            self._set_state(S_FAILOVER, 'failback deferred %.1f s (min_transition_interval)' % left)
            return
        self._failback(now, healthy_for)

    # -- an unfinished switch
    def _settle(self, now):
        """Complete the unfinished switch if it is still needed, else undo it (back to where it started)."""
        kind = self.pending.get('kind')
        if kind == 'failover':
            needed = self.p_declared_down and (self.secondary_healthy() or not self.cfg.require_secondary_healthy)
        else:
            needed = self.p_healthy_since is not None
        if needed and kind == 'failover':
            self._failover(now)
        elif needed:
            self._failback(now, now - self.p_healthy_since)
        else:
            back = route_mode.MODES[self.pending['from']]
            if self._switch(now, back, kind):
                self.log.notice('unfinished %s undone: route mode %s (%s)' % (
                    kind, MODE_NAMES[back], 'primary %s answers again' % self.cfg.primary if kind == 'failover'
                    else 'primary %s failed again' % self.cfg.primary))
                self._set_state(S_FAILOVER if back == MAINTENANCE else S_NORMAL,
                                'unfinished %s undone' % kind)

    # -- transitions
    def _switch(self, now, new_mode, kind):
        """The lock read again, the switch written ahead in the state file, then route_mode.switch.

        True when done (ownership recorded at once: the maintenance mode is the HA check's). On failure the
        switch stays pending: the next rounds complete or undo it.
        """
        lock = self.backend.get_lock()
        if lock is not None:
            self.log.notice('%s not made: the maintenance lock was taken meanwhile by %s (%s); the lock holder '
                            'is in charge' % (kind.upper(), lock.get('owner'), lock.get('reason')))
            self._pause(lock, self.mode)
            return False
        if self.pending is None:
            self.pending = {'kind': kind, 'from': MODE_NAMES.get(self.mode), 'to': MODE_NAMES[new_mode],
                            'at': iso(self.wall()), 'epoch': round(self.wall(), 3)}
        self._dirty = True
        self._save(now)
        try:
            self.backend.set_mode(new_mode)
        except BackendError as exc:
            try:
                running = self.backend.get_mode()
                self.mode = self.expected_mode = running
            except BackendError:
                running = None
            self._once('switch-error', 'error', '%s FAILED: cannot set route mode %s: %s; Kamailio runs %s; '
                       'completed on a next round if still needed, else undone'
                       % (kind.upper(), MODE_NAMES[new_mode], exc, MODE_NAMES.get(running, 'an unknown mode')))
            self._set_state(S_ERROR, '%s failed: %s' % (kind, exc))
            return False
        self.pending = None
        self.owned = new_mode == MAINTENANCE
        self.mode = self.expected_mode = new_mode
        self._forget('switch-error')
        self._dirty = True
        return True

    def _transition(self, now, new_mode, state, reason, actions_host, commands, name):
        old = self.pending.get('from') if self.pending else MODE_NAMES.get(self.mode)
        retried = self.pending is not None
        if not self._switch(now, new_mode, name):
            return False
        self.last_transition_mono = now
        self.transitions += 1
        self.last_transition = {'at': iso(self.wall()), 'epoch': round(self.wall(), 3), 'from': old,
                                'to': MODE_NAMES[new_mode], 'by': 'wazo-ha-check', 'kind': name, 'reason': reason}
        self.log.notice('%s: route mode %s -> %s (traffic to the %s): %s%s' % (
            name.upper(), old, MODE_NAMES[new_mode],
            'secondary %s' % self.cfg.secondary if new_mode == MAINTENANCE else 'primary %s' % self.cfg.primary,
            reason, ' (completed on a retry)' if retried else ''))
        self._set_state(state, reason)
        if commands and self.runner is not None:
            try:
                with self.lock_:
                    self.last_actions = {'kind': name, 'host': actions_host, 'started': iso(self.wall()),
                                         'done': None, 'results': []}
                self.runner.submit(name, actions_host, commands)
            except Exception as exc:  # pylint: disable=broad-except
                self.log.error('%s actions on %s not started: %s: %s (the switch stands)'
                               % (name, actions_host, type(exc).__name__, exc))
        return True

    def _failover(self, now):
        reason = 'primary %s failed %d consecutive SIP OPTIONS probes (last: %s)' % (
            self.cfg.primary, self.p_failures, self.p_last.describe() if self.p_last else '?')
        if self._transition(now, MAINTENANCE, S_FAILOVER, reason, self.cfg.secondary,
                            self.cfg.failover_commands, 'failover'):
            self._forget('failover-blocked')

    def _failback(self, now, healthy_for):
        reason = 'primary %s answered every SIP OPTIONS probe for %.1f s (failback_delay %g s)' % (
            self.cfg.primary, healthy_for, self.cfg.failback_delay)
        if self._transition(now, NORMAL, S_NORMAL, reason, self.cfg.primary, self.cfg.failback_commands, 'failback'):
            self._forget('failback-wait')

    def actions_done(self, name, host, results):
        with self.lock_:
            if self.last_actions and self.last_actions.get('kind') == name:
                self.last_actions = dict(self.last_actions, done=iso(self.wall()), results=results)
            self._dirty = True

    # -- persistence
    def snapshot(self):
        p, s = self.p_last, self.s_last
        with self.lock_:
            actions = self.last_actions
        return {
            'version': 1,
            'state': self.state,
            'since': iso(self.since_wall),
            'reason': self.reason,
            'route_mode': MODE_NAMES.get(self.mode),
            'failover_owned': self.owned,
            'pending_switch': self.pending,
            'lock': self.lock,
            'primary': {'address': self.cfg.primary, 'healthy': bool(p and p.ok), 'down': self.p_declared_down,
                        'consecutive_failures': self.p_failures, 'last_probe': p.describe() if p else None,
                        'healthy_for': (round(self.clock() - self.p_healthy_since, 1)
                                        if self.p_healthy_since is not None else None)},
            'secondary': {'address': self.cfg.secondary, 'healthy': bool(s and s.ok),
                          'last_probe': s.describe() if s else None},
            'last_transition': self.last_transition,
            'transitions': self.transitions,
            'last_actions': actions,
            'settings': {'down_after': self.cfg.down_after, 'probe_interval': self.cfg.probe_interval,
                         'probe_timeout': self.cfg.probe_timeout, 'failback_delay': self.cfg.failback_delay,
                         'min_transition_interval': self.cfg.min_transition_interval},
            'pid': os.getpid(),
            'updated': iso(self.wall()),
        }

    def _save(self, now):
        if not self._dirty and self._last_save is not None and now - self._last_save < self.cfg.heartbeat:
            return
        try:
            self.store.save(self.snapshot())
            self._dirty = False
            self._last_save = now
            self._forget('save-error')
        except (IOError, OSError) as exc:
            self._once('save-error', 'error', 'cannot write state file: %s' % exc)

    def stopped(self):
        try:
            data = self.snapshot()
            data.update(state='stopped', reason='wazo-ha-check is not running', since=iso(self.wall()))
            self.store.save(data)
        except (IOError, OSError):
            pass


# -- systemd ------------------------------------------------------------------------------------
class Notifier:
    """systemd's notification protocol (sd_notify) with the standard library: one datagram of
    ``KEY=value`` lines to the unix socket in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract
    one). Without ``$NOTIFY_SOCKET`` (not under systemd) every call does nothing."""

    def __init__(self, log, environ=None):
        environ = os.environ if environ is None else environ
        self.log = log
        address = environ.get('NOTIFY_SOCKET') or ''
        self.address = None
        if address.startswith('@'):
            self.address = '\0' + address[1:]
        elif address.startswith('/'):
            self.address = address
        self.failed = False

    def notify(self, *lines):
        if self.address is None:
            return False
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(self.address)
                sock.sendall('\n'.join(lines).encode('utf-8', 'replace'))
            finally:
                sock.close()
        except (IOError, OSError) as exc:
            if not self.failed:
                self.log.error('cannot notify systemd on %s: %s (the watchdog will restart the service)'
                               % (self.address.replace('\0', '@'), exc))
            self.failed = True
            return False
        self.failed = False
        return True


class RoundErrors:
    """Errors that end a round: the first of a kind logged with its traceback, repeats counted and
    reminded every ``remind`` seconds, the recovery logged."""

    def __init__(self, log, clock=time.monotonic, remind=60):
        self.log = log
        self.clock = clock
        self.remind = remind
        self.key = None
        self.count = 0
        self.last_log = None

    def failed(self, exc):
        key = '%s: %s' % (type(exc).__name__, exc)
        self.count += 1
        now = self.clock()
        if key != self.key:
            self.key, self.last_log = key, now
            trace = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()
            self.log.error('error in a round (the next round runs): %s | %s' % (key, trace.replace('\n', ' | ')))
        elif now - self.last_log >= self.remind:
            self.last_log = now
            self.log.error('error in a round again (%d rounds failed so far): %s' % (self.count, key))

    def ok(self):
        if self.count:
            self.log.notice('recovered after %d failed rounds (last error: %s)' % (self.count, self.key))
        self.key, self.count, self.last_log = None, 0, None


# -- main ---------------------------------------------------------------------------------------
def run(cfg, log, stop, backend=None, prober=None, store=None, max_rounds=None, notifier=None):
    """The probe loop: one round every probe_interval; an error in a round is logged, the next runs."""
    backend = backend or KamailioBackend(cfg)
    store = store or StateFile(cfg.state_file)
    notifier = notifier or Notifier(log)
    targets = [(cfg.primary, cfg.primary_port), (cfg.secondary, cfg.secondary_port)]
    prober = prober or OptionsProber(targets, cfg.probe_timeout)
    check = HACheck(cfg, backend, log, store)
    check.runner = ActionRunner(backend.ssh_run, log, on_done=check.actions_done)
    errors = RoundErrors(log)
    log.notice('wazo-ha-check started: primary %s:%d, secondary %s:%d, probe every %g s (timeout %g s), down after %d '
               'failures (<= %.1f s), failback after %g s healthy, min %g s between switches'
               % (cfg.primary, cfg.primary_port, cfg.secondary, cfg.secondary_port, cfg.probe_interval,
                  cfg.probe_timeout, cfg.down_after, cfg.detection_time, cfg.failback_delay,
                  cfg.min_transition_interval))
    rounds = 0
    status = None
    next_round = time.monotonic()
    try:
        while not stop.is_set():
            try:
                results = prober.probe()
                check.tick(results[targets[0]], results.get(targets[1]))
                errors.ok()
            except Exception as exc:  # pylint: disable=broad-except
                errors.failed(exc)
                try:
                    check.round_failed(exc)
                except Exception:  # pylint: disable=broad-except
                    pass
            # READY once the first round ran, then WATCHDOG after every round (a hung loop stops them).
            lines = ['READY=1' if rounds == 0 else 'WATCHDOG=1']
            if (check.state, check.reason) != status:
                status = (check.state, check.reason)
                lines.append('STATUS=%s: %s' % status)
            notifier.notify(*lines)
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                break
            next_round += cfg.probe_interval
            delay = next_round - time.monotonic()
            if delay < 0:                     # late (slow RPC): do not try to catch up
                next_round = time.monotonic()
                delay = 0
            stop.wait(delay)
    finally:
        notifier.notify('STOPPING=1')
        prober.close()
        check.stopped()
        log.notice('wazo-ha-check stopped')
    return check


def main(argv=None):
    parser = argparse.ArgumentParser(prog='wazo-ha-check', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='configuration file (default %(default)s)')
    parser.add_argument('--check-config', metavar='FILE', help='validate FILE and exit (0 = valid)')
    parser.add_argument('--probe', metavar='HOST[:PORT]', help='send one SIP OPTIONS and print the result')
    parser.add_argument('--timeout', type=float, default=1.0, help='--probe timeout (default 1 s)')
    args = parser.parse_args(argv)

    if args.probe:
        host, dummy, port = args.probe.rpartition(':') if args.probe.count(':') == 1 else (args.probe, '', '5060')
        target = (host, int(port or 5060))
        prober = OptionsProber([target], args.timeout)
        try:
            res = prober.probe()[target]
        finally:
            prober.close()
        print('%s:%d %s %s' % (target[0], target[1], 'UP' if res.ok else 'DOWN', res.describe()))
        return 0 if res.ok else 1

    if args.check_config:
        try:
            cfg = Config.load(args.check_config)
        except ConfigError as exc:
            print('invalid: %s' % exc, file=sys.stderr)
            return 1
        print('valid: primary %s, secondary %s, failover decided within %.1f s of the last answer'
              % (cfg.primary, cfg.secondary, cfg.detection_time))
        return 0

    try:
        cfg = Config.load(args.config)
    except ConfigError as exc:
        print('wazo-ha-check: %s' % exc, file=sys.stderr)
        return 2
    log = Log(debug=cfg.debug)
    # A fatal signal (the watchdog's SIGABRT) prints every thread's stack to the journal first.
    faulthandler.enable()
    stop = threading.Event()

    def _stop(signum, _frame):
        log.notice('signal %d: stopping' % signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(cfg, log, stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
