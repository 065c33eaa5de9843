# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's "where are we": one document built from what ``proxy_status``, ``stack_status`` and
``wazo_upgrade`` (check mode) gathered, the rules that say what blocks an upgrade, and its two renderings
(a compact text table, JSON).

Pure Python, no I/O: ``playbooks/status.yml`` calls it through the ``status_report`` filter.

``build(proxy, stacks, now)``:
  ``proxy``  the ``proxy_status`` result (or ``{'unreachable': True, 'msg': ...}``),
  ``stacks`` ``{'primary': {'host', 'status': <stack_status result>, 'version': <wazo_upgrade result>},
  'secondary': {...}}`` (a result may be ``{'unreachable': True}`` or ``{'failed': True, 'msg': ...}``).
Returns the document (a dict of plain values, JSON-ready); ``render_table(doc)`` and ``render_json(doc)``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import json
import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock

STACKS = ('primary', 'secondary')
PEER = {'primary': 'secondary', 'secondary': 'primary'}
SEVERITIES = ('blocker', 'warning')


# -- small helpers --------------------------------------------------------------------------------
def _epoch(text):
    """'2026-12-02T10:00:00Z' (or with +00:00 / fractions) -> epoch seconds; None when not a UTC ISO time."""
    if not text or not isinstance(text, str):
        return None
    base = text.strip().replace('+00:00', 'Z').replace('+0000', 'Z')
    if '.' in base:
        base = base.split('.', 1)[0] + ('Z' if base.endswith('Z') else '')
    try:
        return calendar.timegm(time.strptime(base, '%Y-%m-%dT%H:%M:%SZ'))
    except ValueError:
        return None


def iso(epoch):
    return None if epoch is None else time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def duration(seconds):
    """93 -> '1m33s', 7322 -> '2h02m', 200000 -> '2d07h'."""
    if seconds is None:
        return '?'
    seconds = int(max(0, seconds))
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % (seconds // 60, seconds % 60)
    if seconds < 86400:
        return '%dh%02dm' % (seconds // 3600, (seconds % 3600) // 60)
    return '%dd%02dh' % (seconds // 86400, (seconds % 86400) // 3600)


def _ago(text, now):
    epoch = _epoch(text)
    if epoch is None:
        return text or '?'
    return '%s (%s ago)' % (text, duration(now - epoch))


def _failed(result):
    """None when ``result`` is a usable module result, else why not (unreachable, failed, skipped, missing)."""
    if not isinstance(result, dict) or not result:
        return 'no result'
    if result.get('unreachable'):
        msg = (result.get('msg') or 'no answer').strip().splitlines()[0].replace('Task failed: ', '')
        return 'unreachable: %s' % msg.replace('Failed to connect to the host via ssh: ', '')[:200]
    if result.get('failed'):
        return 'failed: %s' % (result.get('msg') or '?').strip().splitlines()[0][:200]
    if result.get('skipped'):
        return 'skipped'
    return None


# -- the lock and who set the mode ----------------------------------------------------------------
def lock_holder(lock):
    """A lock in words: 'operator (wazo-mode)', 'upgrade.yml run 1a2b of root@ctl (pid 42)', ..."""
    if not lock:
        return None
    return maintenance_lock.holder(lock, 'operator (wazo-mode)' if lock.get('owner') == 'wazo-mode' else None)


def _route(proxy, ha):
    """The route block: mode, who set it, since when, the lock."""
    route = {'mode': None, 'persisted_mode': None, 'set_by': None, 'since': None, 'lock': None, 'error': None}
    why = _failed(proxy)
    if why:
        route['error'] = 'proxy %s' % why
        return route
    route.update(mode=proxy.get('mode'), persisted_mode=proxy.get('persisted_mode'), lock=proxy.get('lock'),
                 error=proxy.get('mode_error'))
    lock = proxy.get('lock')
    last = (ha or {}).get('last_transition') or {}
    changed_at = proxy.get('persisted_mtime')
    if lock:
        route['set_by'] = 'lock: %s' % lock_holder(lock)
        route['since'] = lock.get('since')
    elif route['mode'] == 'maintenance' and ((ha or {}).get('failover_owned') or (ha or {}).get('state') == 'failover'):
        route['set_by'] = 'HA check failover'
        route['since'] = last.get('at') or changed_at
    elif route['mode'] == 'maintenance':
        route['set_by'] = 'unknown: no lock, not the HA check (kamailio_mode or by hand)'
        route['since'] = changed_at
    elif route['mode'] == 'normal':
        route['set_by'] = ('HA check failback' if last.get('kind') == 'failback' and _close(last.get('at'), changed_at)
                           else 'none (no lock held)')
        route['since'] = changed_at
    return route


def _close(at, other, slack=10):
    a, b = _epoch(at), _epoch(other)
    return a is not None and b is not None and abs(a - b) <= slack


# -- the HA check ---------------------------------------------------------------------------------
def _ha(proxy):
    if _failed(proxy):
        return {'state': None, 'error': 'proxy %s' % _failed(proxy)}
    state = proxy.get('ha_check') or {}
    out = {'state': state.get('state') or ('not installed' if not proxy.get('ha_check_unit') else 'no state file'),
           'unit': proxy.get('ha_check_unit'), 'since': state.get('since'), 'reason': state.get('reason'),
           'failover_owned': bool(state.get('failover_owned')), 'pending_switch': state.get('pending_switch'),
           'primary_healthy': (state.get('primary') or {}).get('healthy'),
           'secondary_healthy': (state.get('secondary') or {}).get('healthy'),
           'last_transition': state.get('last_transition'), 'transitions': state.get('transitions'),
           'updated': state.get('updated'), 'journal': list(proxy.get('ha_check_journal') or [])}
    return out


# -- one stack ------------------------------------------------------------------------------------
def _stack(name, entry, proxy):
    entry = entry or {}
    status, version = entry.get('status') or {}, entry.get('version') or {}
    out = {'host': entry.get('host'), 'reachable': True, 'error': None,
           'version': None, 'candidate': None, 'upgrade_available': None, 'version_error': None,
           'upgrade_run': None,
           'kamailio_dialogs': None, 'asterisk_running': None, 'asterisk_channels': None, 'asterisk_calls': None,
           'longest_call_seconds': None, 'asterisk_error': None,
           'voicemail': None, 'cel': None, 'blf': None, 'replication': None}
    if not _failed(proxy):
        out['kamailio_dialogs'] = (proxy.get('dialogs') or {}).get(name)
    why = _failed(status)
    if why:
        out['reachable'] = not why.startswith('unreachable') and why != 'no result'
        out['error'] = why
    else:
        ast = status.get('asterisk') or {}
        out.update(asterisk_running=ast.get('running'), asterisk_channels=ast.get('channels'),
                   asterisk_calls=ast.get('calls'), longest_call_seconds=ast.get('longest_call_seconds'),
                   asterisk_error=ast.get('error'), voicemail=status.get('voicemail'), cel=status.get('cel'),
                   blf=status.get('blf'), replication=status.get('replication'))
    why = _failed(version)
    if why:
        out['version_error'] = why
        if why.startswith('unreachable'):
            out['reachable'] = False
            out['error'] = out['error'] or why
    else:
        out.update(version=version.get('version_before'), candidate=version.get('candidate'),
                   upgrade_available=version.get('upgrade_available'))
        run = version.get('run')
        if isinstance(run, dict):
            out['upgrade_run'] = dict((k, run.get(k)) for k in ('id', 'mode', 'status', 'target', 'finished',
                                                                'collected', 'msg'))
    return out


# -- the last replication -------------------------------------------------------------------------
def _replication(stacks):
    """Newest evidence of a replication primary -> secondary, and what it is based on."""
    rep = (stacks.get('primary') or {}).get('replication') or {}
    candidates = []
    real = rep.get('script_files') or {}
    if real.get('last_run'):
        candidates.append((real['last_run'], real.get('result') or 'unknown',
                           'files the replication script leaves in /tmp (%s)' % (real.get('detail') or '')))
    cron = rep.get('cron_last_run')
    if cron:
        candidates.append((cron, 'unknown',
                           'cron started it (journal); its output goes to /dev/null, the result is not recorded'))
    marker = rep.get('sync_marker') or {}
    if marker.get('mtime'):
        candidates.append((marker['mtime'], 'succeeded',
                           'setup.yml first sync marker %s (to %s)' % (marker.get('path'), marker.get('content'))))
    out = {'last': None, 'result': None, 'based_on': None, 'cron': rep.get('cron'),
           'sources': [{'at': at, 'result': res, 'based_on': on} for at, res, on in candidates]}
    dated = [c for c in candidates if _epoch(c[0]) is not None]
    if dated:
        at, res, on = max(dated, key=lambda c: _epoch(c[0]))
        out.update(last=at, result=res, based_on=on)
    elif not rep:
        out['based_on'] = 'primary not read'
    else:
        out['based_on'] = 'no trace of a replication (no cron run in the journal, no marker)'
    return out


# -- blockers -------------------------------------------------------------------------------------
def _add(blockers, severity, what, todo):
    blockers.append({'severity': severity, 'what': what, 'todo': todo})


def blockers_for(doc):
    """What stands in the way of an upgrade (severity ``blocker``) or deserves a look (``warning``), each with
    what to do. One list, in this order: proxy, lock/route, HA check, stacks, versions, links."""
    out = []
    route, ha, stacks = doc['route'], doc['ha_check'], doc['stacks']
    if route.get('error') and route.get('mode') is None:
        _add(out, 'blocker', route['error'], 'check SSH to the proxy and that Kamailio runs (systemctl status kamailio)')
    lock = route.get('lock')
    if lock:
        owner = lock.get('owner')
        if owner == 'upgrade.yml':
            todo = ('an upgrade runs or stopped half-way: wait for it, or rerun upgrade.yml (it resumes), or abort it '
                    '(-e wazo_mm_upgrade_abort=true)')
        elif owner == 'wazo-mode':
            todo = 'an operator maintenance: when it is over, `wazo-mode normal` on the proxy (releases the lock)'
        else:
            todo = 'find who took it (reason: %s); remove %s once nobody works on the system' % (
                lock.get('reason') or '?', 'the lock file /var/lib/wazo-maintenance/maintenance.lock')
        _add(out, 'blocker', 'maintenance lock held by %s since %s' % (lock_holder(lock), lock.get('since') or '?'),
             todo)
    if route.get('mode') and route.get('persisted_mode') and route['mode'] != route['persisted_mode']:
        _add(out, 'blocker', 'route mode running %s but routemode.cfg holds %s' % (route['mode'], route['persisted_mode']),
             'switch explicitly (`wazo-mode normal` or `wazo-mode maintenance`) so both agree')
    if route.get('mode') == 'maintenance' and not lock:
        if (route.get('set_by') or '').startswith('HA check'):
            _add(out, 'blocker', 'HA check failed over: traffic on the secondary since %s' % (route.get('since') or '?'),
                 'repair the primary (SIP on udp/5060); the HA check fails back after its failback delay of health')
        else:
            _add(out, 'blocker', 'route mode maintenance without a lock (%s)' % route.get('set_by'),
                 '`wazo-mode normal` on the proxy once the secondary may give the traffic back')
    if ha.get('pending_switch'):
        pend = ha['pending_switch']
        _add(out, 'blocker', 'HA check has an unfinished %s (%s -> %s, since %s)' % (
            pend.get('kind'), pend.get('from'), pend.get('to'), pend.get('at')),
            'wait a few seconds (it is completed or undone on its next rounds); see journalctl -u wazo-ha-check')
    if ha.get('state') in ('error',):
        _add(out, 'warning', 'HA check in error: %s' % (ha.get('reason') or '?'), 'journalctl -u wazo-ha-check')
    elif ha.get('state') in ('stopped', 'no state file') or ha.get('unit') in ('inactive', 'failed'):
        _add(out, 'warning', 'HA check not running (%s, unit %s)' % (ha.get('state'), ha.get('unit')),
             'systemctl enable --now wazo-ha-check on the proxy, unless stopped on purpose')
    versions = {}
    for name in STACKS:
        one = stacks[name]
        label = name if one.get('host') in (None, name) else '%s (%s)' % (name, one['host'])
        if not one['reachable']:
            _add(out, 'blocker', '%s unreachable (%s)' % (label, _strip(one.get('error'), 'unreachable: ')),
                 'restore SSH to it (host up, sshd, network) before any upgrade')
            continue
        if one.get('error'):
            _add(out, 'blocker', '%s: status not read (%s)' % (label, one['error']), 'see the task output for that host')
        if one.get('asterisk_running') is False:
            _add(out, 'blocker', '%s: Asterisk not running (%s)' % (label, one.get('asterisk_error') or '?'),
                 'systemctl start asterisk (needs the voicemail share mounted); wazo-service status')
        vm = one.get('voicemail') or {}
        if one.get('voicemail') is not None and not vm.get('mounted'):
            _add(out, 'blocker', '%s: voicemail share not mounted on %s' % (label, vm.get('path')),
                 'mount it (`mount %s`, fstab written by setup.yml voicemail_nfs), then check the NFS server'
                 % (vm.get('path') or ''))
        run = one.get('upgrade_run') or {}
        if run.get('status') in ('running', 'finished'):
            _add(out, 'blocker', '%s: a wazo-upgrade run is %s (%s)' % (label, run['status'], run.get('id')),
                 'rerun upgrade.yml: it waits for or reports that run')
        elif run.get('status') in ('failed', 'lost') and not run.get('collected'):
            _add(out, 'blocker', '%s: the last wazo-upgrade run %s: %s' % (label, run['status'], run.get('msg') or ''),
                 'rerun upgrade.yml (it reports it, then retries), after fixing the cause on the stack')
        if one.get('version_error'):
            _add(out, 'blocker', '%s: version not read (%s)' % (label, one['version_error']),
                 'apt-cache policy wazo-platform on the stack')
        elif one.get('version'):
            versions[name] = one['version']
        cel = one.get('cel')
        if isinstance(cel, dict) and not cel.get('ok'):
            _add(out, 'warning', '%s: CEL link to the %s not connected (%s)' % (label, PEER[name], cel.get('detail')),
                 "asterisk -rx 'odbc show %s'; check PostgreSQL on the %s and the pg_hba line (setup.yml cel_odbc)"
                 % (cel.get('dsn') or '', PEER[name]))
        blf = one.get('blf')
        if isinstance(blf, dict) and not blf.get('ok'):
            _add(out, 'warning', '%s: BLF/MWI publication to the %s not up (%s)' % (label, PEER[name], blf.get('detail')),
                 "asterisk -rx 'module show like res_pjsip_'; asterisk -rx 'pjsip show endpoint <peer>'; SIP between the "
                 "stacks (udp/5060); rerun setup.yml (blf_sync)")
    if len(versions) == 2 and versions['primary'] != versions['secondary']:
        _add(out, 'blocker', 'versions differ: primary %s, secondary %s' % (versions['primary'], versions['secondary']),
             'finish the upgrade: rerun upgrade.yml (it resumes), or restore the upgraded stack from its snapshot')
    if doc.get('upgrade_state'):
        st = doc['upgrade_state']
        what = 'an unfinished upgrade from %s to %s (started %s)' % (
            st.get('from') or '?', st.get('target') or '?', st.get('started') or '?')
        _add(out, 'blocker', what, 'rerun upgrade.yml (it resumes) or abort it (-e wazo_mm_upgrade_abort=true)')
    rep = doc['replication']
    if rep.get('cron') == 'paused' and not lock and not doc.get('upgrade_state'):
        _add(out, 'warning', 'DB sync cron on the primary commented (paused) with no upgrade running',
             'rerun upgrade.yml to finish (it restores it), or the ha role entry point db_sync_resume')
    elif rep.get('cron') == 'missing':
        _add(out, 'warning', 'no DB sync cron on the primary (/etc/cron.d/xivo-ha-master)',
             'the primary is not HA master: rerun setup.yml (ha role)')
    if rep.get('result') == 'failed':
        _add(out, 'warning', 'the last replication failed (%s, based on %s)' % (rep.get('last'), rep.get('based_on')),
             'run it by hand on the primary: xivo-master-slave-db-replication <secondary address>')
    return out


# -- the document ---------------------------------------------------------------------------------
def build(proxy, stacks, now=None):
    """The status document (see the module docstring)."""
    now = time.time() if now is None else now
    proxy = proxy or {}
    ha = _ha(proxy)
    doc = {'generated': iso(now), 'route': _route(proxy, None if _failed(proxy) else proxy.get('ha_check')),
           'ha_check': ha, 'stacks': {}}
    for name in STACKS:
        doc['stacks'][name] = _stack(name, (stacks or {}).get(name), proxy)
    upgrade_state = None if _failed(proxy) else proxy.get('upgrade_state')
    doc['upgrade_state'] = upgrade_state
    doc['replication'] = _replication(doc['stacks'])
    doc['blockers'] = blockers_for(doc)
    doc['upgrade_possible'] = not any(b['severity'] == 'blocker' for b in doc['blockers'])
    return doc


def render_json(doc):
    return json.dumps(doc, indent=2, sort_keys=True)


# -- the table ------------------------------------------------------------------------------------
def _strip(text, prefix):
    text = text or '?'
    return text[len(prefix):] if text.startswith(prefix) else text


def _val(value, unknown='?'):
    return unknown if value is None else str(value)


def _yes(flag, detail=''):
    if flag is None:
        return '?'
    return ('yes' if flag else 'NO') + (' (%s)' % detail if detail else '')


def _calls(one):
    if not one['reachable']:
        return '%s dialogs (Kamailio), stack unreachable' % _val(one.get('kamailio_dialogs'))
    if one.get('asterisk_running') is False:
        ast = 'Asterisk DOWN'
    else:
        ast = '%s channels' % _val(one.get('asterisk_channels'))
    text = '%s dialogs (Kamailio), %s' % (_val(one.get('kamailio_dialogs')), ast)
    if one.get('longest_call_seconds') is not None:
        text += ', longest %s' % duration(one['longest_call_seconds'])
    return text


def _version(one):
    if one.get('version_error'):
        return 'unreachable' if not one['reachable'] else one['version_error']
    text = _val(one.get('version'))
    if one.get('upgrade_available'):
        text += ' -> %s available' % _val(one.get('candidate'))
    elif one.get('candidate'):
        text += ' (up to date)'
    return text


def _share(one):
    vm = one.get('voicemail')
    if not one['reachable']:
        return 'unreachable'
    if not vm:
        return '?'
    return _yes(vm.get('mounted'), vm.get('source') if vm.get('mounted') else vm.get('path'))


def _link(one, key):
    link = one.get(key)
    if not one['reachable']:
        return 'unreachable'
    if not link:
        return '?'
    return _yes(link.get('ok'), link.get('detail'))


def render_table(doc):
    """The compact table: one row per item, a column per stack where the item is per stack."""
    now = _epoch(doc.get('generated')) or time.time()
    route, ha, stacks = doc['route'], doc['ha_check'], doc['stacks']
    rows = []
    if route.get('mode') is None:
        rows.append(('route mode', 'UNKNOWN: %s' % (route.get('error') or '?')))
    else:
        mode = route['mode']
        if route.get('persisted_mode') and route['persisted_mode'] != mode:
            mode += ' (routemode.cfg: %s)' % route['persisted_mode']
        mode += ', new calls to the %s' % ('secondary' if route['mode'] == 'maintenance' else 'primary')
        rows.append(('route mode', mode))
        rows.append(('set by', '%s, since %s' % (route.get('set_by') or '?', _ago(route.get('since'), now))))
    ha_text = _val(ha.get('state'), 'not read (%s)' % ha.get('error'))
    if ha.get('reason'):
        ha_text += ': %s' % ha['reason']
    if ha.get('since'):
        ha_text += ' (since %s)' % _ago(ha['since'], now)
    rows.append(('HA check', ha_text))
    last = ha.get('last_transition') or {}
    if last:
        switch = '%s %s -> %s at %s: %s' % (last.get('kind'), last.get('from'), last.get('to'), last.get('at'),
                                            last.get('reason') or '')
        rows.append(('  its last switch', switch))
    for line in (ha.get('journal') or [])[-3:]:
        msg = line.get('message') or ''
        rows.append(('  journal', '%s %s' % (line.get('at'), msg if len(msg) <= 110 else msg[:107] + '...')))
    per_stack = [('reachable', lambda s: 'yes' if s['reachable'] else 'NO (%s)' % _strip(s.get('error'), 'unreachable: ')),
                 ('Wazo version', _version),
                 ('live calls', _calls),
                 ('voicemail share', _share),
                 ('CEL to peer', lambda s: _link(s, 'cel')),
                 ('BLF/MWI to peer', lambda s: _link(s, 'blf'))]
    for label, fn in per_stack:
        rows.append((label, tuple(fn(stacks[name]) for name in STACKS)))
    rep = doc['replication']
    rows.append(('last replication', '%s, %s (based on: %s)%s' % (
        _ago(rep.get('last'), now) if rep.get('last') else 'never seen', rep.get('result') or 'unknown',
        rep.get('based_on'), '; cron %s' % rep['cron'] if rep.get('cron') else '')))
    blockers = doc['blockers']
    width = max(len(r[0]) for r in rows)
    heads = tuple('%s (%s)' % (name, stacks[name].get('host')) if stacks[name].get('host') not in (None, name)
                  else name for name in STACKS)
    col = max([len(heads[0])] + [len(r[1][0]) for r in rows if isinstance(r[1], tuple)])
    col2 = max([len(heads[1])] + [len(r[1][1]) for r in rows if isinstance(r[1], tuple)])
    lines = ['%-*s | %-*s | %s' % (width, '', col, heads[0], heads[1]),
             '%s-+-%s-+-%s' % ('-' * width, '-' * col, '-' * col2)]
    for label, value in rows:
        if isinstance(value, tuple):
            lines.append('%-*s | %-*s | %s' % (width, label, col, value[0], value[1]))
        else:
            lines.append('%-*s | %s' % (width, label, value))
    lines.append('%s-+-%s' % ('-' * width, '-' * (col + col2 + 3)))
    if not blockers:
        lines.append('%-*s | none: an upgrade may start' % (width, 'blockers'))
    for item in blockers:
        lines.append('%-*s | %s' % (width, item['severity'].upper(), item['what']))
        lines.append('%-*s |   -> %s' % (width, '', item['todo']))
    return '\n'.join(line.rstrip() for line in lines)
