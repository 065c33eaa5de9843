# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Agent sync on the proxy: its configuration and the mirror that follows the route mode.

* :class:`Config`: ``/etc/wazo-maintenance/agent-sync.conf`` (INI, section ``[agent-sync]``, mode 0600: it
  holds the wazo-auth password), written by the ``agent_sync`` role, read by the daemon
  (``wazo-agent-sync``) and by the ``agent_reconcile`` module.
* :class:`Mirror`: one round of the daemon. The stack that carries traffic is the one the persisted route
  mode names (``routemode.cfg``: normal -> primary, maintenance -> secondary); every round makes the other
  stack's logins equal to it (``agentd.reconcile``), so a login or logoff there is mirrored within one
  interval. When the route mode changed since the previous round (a switch by upgrade.yml, switch.yml,
  wazo-mode or the HA check), the stack that carried traffic until then is first copied onto the new one
  (the hand-over: agents who logged in during a maintenance window keep their login after the switch back).
  Only what changed on that stack since the daemon last read it is handed over (a three-way merge with the
  logins it saw then, kept in ``agent-sync.json``): a login made on the new stack after the switch is not
  undone. If it cannot be read (a failover: it is down) that is logged and the new stack is taken as it is.
* A stack whose wazo-auth/wazo-agentd does not answer is logged with the reason and retried after a delay
  that doubles up to ``retry_max`` seconds; its recovery is logged too. Never skipped silently.

Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import json
import os

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import agentd
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode
from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write, read_text
from ansible_collections.wazo.maintenance_mode.plugins.module_utils._ini_section import read_section

DEFAULT_CONFIG = '/etc/wazo-maintenance/agent-sync.conf'
# In the state directory: the stack mirrored last ({"source": "primary"}), so a daemon (re)started after a route
# change still hands the logins over.
STATE_FILE = 'agent-sync.json'
SECTION = 'agent-sync'
STACKS = ('primary', 'secondary')
OTHER = {'primary': 'secondary', 'secondary': 'primary'}


class ConfigError(Exception):
    pass


class Config:
    """The daemon's and the module's settings. Addresses, user and password have no default."""

    KEYS = ('primary', 'secondary', 'port', 'username', 'password', 'ca_file', 'verify', 'timeout', 'interval',
            'retry_initial', 'retry_max', 'state_dir')

    def __init__(self, **kw):
        self.primary = kw.get('primary')
        self.secondary = kw.get('secondary')
        self.port = int(kw.get('port', 443))
        self.username = kw.get('username')
        self.password = kw.get('password')
        self.ca_file = kw.get('ca_file') or None
        self.verify = bool(kw.get('verify', True))
        self.timeout = float(kw.get('timeout', 5))
        self.interval = float(kw.get('interval', 2))
        self.retry_initial = float(kw.get('retry_initial', 2))
        self.retry_max = float(kw.get('retry_max', 60))
        self.state_dir = kw.get('state_dir') or route_mode.DEFAULT_STATE_DIR

    def validate(self):
        errors = []
        for name in STACKS:
            try:
                ipaddress.ip_address(getattr(self, name) or '')
            except ValueError:
                errors.append('%s: %r is not an IP address' % (name, getattr(self, name)))
        if self.primary and self.primary == self.secondary:
            errors.append('primary and secondary are the same address')
        for name in ('username', 'password'):
            if not getattr(self, name):
                errors.append('%s: missing' % name)
        if not 0 < self.port < 65536:
            errors.append('port: out of range')
        for name in ('timeout', 'interval', 'retry_initial'):
            if getattr(self, name) <= 0:
                errors.append('%s: must be > 0' % name)
        if self.retry_max < self.retry_initial:
            errors.append('retry_max: must be >= retry_initial')
        if errors:
            raise ConfigError('; '.join(errors))
        return self

    @classmethod
    def load(cls, path=DEFAULT_CONFIG):
        sec = read_section(path, SECTION, cls.KEYS, ConfigError)
        try:
            kw = dict((key, sec.getboolean(key) if key == 'verify' else sec[key].strip()) for key in sec)
            return cls(**kw).validate()
        except ValueError as exc:
            raise ConfigError('%s: %s' % (path, exc))

    def client(self, stack):
        return agentd.Agentd(stack, getattr(self, stack), self.username, self.password, port=self.port,
                             ca_file=self.ca_file, verify=self.verify, timeout=self.timeout)


def traffic_stack(state_dir):
    """The stack new calls go to according to routemode.cfg (None when the file does not exist)."""
    mode = route_mode.read_persisted_mode(state_dir)
    return None if mode is None else route_mode.MODE_STACK[mode]


class Mirror:
    """The daemon's rounds. ``clients``: {'primary': Agentd, 'secondary': Agentd}; ``log(level, msg)``."""

    def __init__(self, cfg, clients, log, read_traffic=None):
        self.cfg = cfg
        self.clients = clients
        self.log = log
        self.read_traffic = read_traffic or (lambda: traffic_stack(cfg.state_dir))
        self._dest = None
        self.state_file = os.path.join(cfg.state_dir, STATE_FILE)
        # The stack mirrored during the previous round, and the stack whose logins a route change is to hand over
        # (until done or given up): both kept across restarts.
        self.source, self.handover_from, self.seen = self._load()
        self._saved = self._state()
        self.down = {}              # stack -> {'since', 'error', 'delay', 'next'}

    def _load(self):
        """(source, handover_from, seen): ``seen`` the source's logins at the last round, None if unknown."""
        try:
            data = json.loads(read_text(self.state_file) or '{}')
            stacks = [data.get(k) if data.get(k) in STACKS else None for k in ('source', 'handover_from')]
            seen = data.get('seen')
            seen = None if seen is None else dict(((t, n), where) for t, n, where in seen)
            return stacks[0], stacks[1], seen
        except (IOError, OSError, ValueError, TypeError, AttributeError):
            return None, None, None

    def _state(self):
        seen = None if self.seen is None else sorted([k[0], k[1], v] for k, v in self.seen.items())
        return {'source': self.source, 'handover_from': self.handover_from, 'seen': seen}

    def _save(self):
        state = self._state()
        if state == self._saved:
            return
        try:
            atomic_write(self.state_file, json.dumps(state) + '\n')
            self._saved = state
        except (IOError, OSError) as exc:
            self.log('warning', 'cannot write %s: %s' % (self.state_file, exc))

    # -- unreachable stacks: report, back off, report the recovery
    def _failed(self, stack, exc, now):
        entry = self.down.get(stack)
        delay = self.cfg.retry_initial if entry is None else min(entry['delay'] * 2, self.cfg.retry_max)
        self.down[stack] = {'since': entry['since'] if entry else now, 'error': str(exc), 'delay': delay,
                            'next': now + delay}
        self.log('error', 'agentd of the %s unreachable (%s): retry in %g s' % (stack, getattr(exc, 'reason', exc), delay))

    def _recovered(self, stack, now):
        entry = self.down.pop(stack, None)
        if entry is not None:
            self.log('notice', 'agentd of the %s reachable again after %.0f s' % (stack, now - entry['since']))

    def _waiting(self, now):
        return [s for s, e in self.down.items() if now < e['next']]

    def _log_action(self, result):
        level = 'notice' if result['ok'] else 'error'
        self.log(level, 'mirror to the %s: %s -> %s' % (
            self._dest, agentd.describe(result), 'OK' if result['ok'] else 'FAILED: %s' % result['error']))

    def _reconcile(self, src, dst, now, handover=False):
        """The reconcile result, or the name of the stack that could not be read. A hand-over copies only the
        agents whose login on ``src`` changed since :attr:`seen` (all of them when nothing was seen)."""
        self._dest = dst
        try:
            src_agents = self.clients[src].agents()
            dst_agents = self.clients[dst].agents()
        except agentd.AgentdError as exc:
            self._failed(exc.stack, exc, now)
            return exc.stack
        for stack in (src, dst):
            self._recovered(stack, now)
        if handover and self.seen is not None:
            now_logins = agentd.logins(src_agents)
            changed = set(k for k in set(now_logins) | set(self.seen) if now_logins.get(k) != self.seen.get(k))
            src_agents = [a for a in src_agents if agentd.agent_key(a) in changed]
            dst_agents = [a for a in dst_agents if agentd.agent_key(a) in changed]
        elif not handover:
            self.seen = agentd.logins(src_agents)
        todo = agentd.plan(src_agents, dst_agents)
        result = {'actions': agentd.apply(self.clients[dst], todo['actions'], self._log_action),
                  'missing': todo['missing']}
        for miss in result['missing']:
            self.log('warning', 'agent %s (tenant %s) is logged on the %s only: it does not exist on the other '
                     'stack' % (miss['number'], miss['tenant_uuid'], src if miss['on'] == 'source' else dst))
        return result

    def round(self, now):
        """One round; returns the reconcile result, or None when nothing could be done."""
        try:
            src = self.read_traffic()
        except Exception as exc:  # pylint: disable=broad-except
            self.log('error', 'cannot read the route mode: %s' % exc)
            return None
        if src is None:
            self.log('warning', 'no route mode persisted yet (routemode.cfg missing): nothing mirrored')
            return None
        if self.source is not None and src != self.source:
            self.log('notice', 'route mode changed: traffic now on the %s (was the %s)' % (src, self.source))
            self.handover_from = self.source
        self.source = src
        try:
            return self._mirror(src, now)
        finally:
            self._save()

    def _mirror(self, src, now):
        waiting = self._waiting(now)
        if self.handover_from == src:
            self.handover_from = None   # switched back before the hand-over ran: nothing to hand over
        if self.handover_from:
            old = self.handover_from
            if src in waiting:
                return None
            if old not in waiting:
                self.log('notice', 'hand-over: the logins of the %s copied to the %s' % (old, src))
                outcome = self._reconcile(old, src, now, handover=True)
                if outcome != old:
                    # done, or the new stack did not answer (the hand-over is tried again)
                    self.handover_from = None if outcome != src else old
                    return None
            # The stack that carried traffic cannot be read (a failover: it is down): its logins cannot be
            # copied; the new stack keeps its own (mirrored from it while it ran).
            self.log('warning', 'hand-over from the %s given up: its agentd is unreachable; the %s keeps its own '
                     'logins' % (old, src))
            self.handover_from = None
            return None
        if waiting:
            return None
        outcome = self._reconcile(src, OTHER[src], now)
        return outcome if isinstance(outcome, dict) else None
