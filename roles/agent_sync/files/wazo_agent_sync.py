#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wazo-agent-sync: call-center agent logins follow the traffic between the two Wazo stacks.

Runs on the Kamailio proxy as ``wazo-agent-sync.service``. Every ``interval`` seconds it makes the logins of
the stack that does not carry traffic equal to those of the stack that does (the route mode persisted in
routemode.cfg says which), through wazo-agentd's REST API with a wazo-auth token; on a route change it first
copies the previous traffic stack onto the new one. The logic is the collection's
``module_utils/agent_sync.py`` and ``agentd.py``, installed by the kamailio_proxy and agent_sync roles. One
journal line per login/logoff made, per stack that stops or starts answering, per route change.

Usage: wazo-agent-sync [--config FILE] | --check-config FILE | --once
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import signal
import sys
import time

__metaclass__ = type

DEFAULT_LIBDIR = '/usr/local/lib/wazo-maintenance'
_LIBDIR = os.environ.get('WAZO_MM_LIBDIR') or DEFAULT_LIBDIR
if os.path.isdir(_LIBDIR) and _LIBDIR not in sys.path:
    sys.path.insert(0, _LIBDIR)

# pylint: disable=wrong-import-position
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import agent_sync  # noqa: E402

LEVELS = {'error': 3, 'warning': 4, 'notice': 5, 'info': 6, 'debug': 7}


def log(level, msg):
    if os.environ.get('JOURNAL_STREAM'):
        line = '<%d>%s' % (LEVELS[level], msg)
    else:
        line = '%s %s: %s' % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), level.upper(), msg)
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(prog='wazo-agent-sync', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=agent_sync.DEFAULT_CONFIG)
    parser.add_argument('--check-config', metavar='FILE', help='validate FILE and exit')
    parser.add_argument('--once', action='store_true', help='one round, then exit (1 if it did nothing)')
    args = parser.parse_args(argv)
    try:
        cfg = agent_sync.Config.load(args.check_config or args.config)
    except agent_sync.ConfigError as exc:
        log('error', 'configuration: %s' % exc)
        return 2
    if args.check_config:
        print('%s: OK' % args.check_config)
        return 0
    try:
        clients = dict((s, cfg.client(s)) for s in agent_sync.STACKS)
    except agent_sync.agentd.AgentdError as exc:
        log('error', str(exc))
        return 2
    mirror = agent_sync.Mirror(cfg, clients, log)
    if args.once:
        return 0 if mirror.round(time.monotonic()) is not None else 1
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    log('notice', 'started: primary %s, secondary %s, every %g s, TLS %s' % (
        cfg.primary, cfg.secondary, cfg.interval,
        ('verified against ' + (cfg.ca_file or 'the system trust store')) if cfg.verify else 'NOT verified'))
    while not stop:
        started = time.monotonic()
        try:
            mirror.round(started)
        except Exception as exc:  # pylint: disable=broad-except
            # An unexpected error: say it and exit non-zero; systemd restarts the service (Restart=on-failure).
            log('error', 'round failed: %s: %s' % (type(exc).__name__, exc))
            return 1
        while not stop and time.monotonic() - started < cfg.interval:
            time.sleep(0.2)
    log('notice', 'stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
