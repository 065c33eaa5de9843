# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run over many sites: whether the next batch may start, and the fleet report (one line per site).

Each site's outcome is recorded by the fleet role on the site's hosts as ``wazo_mm_site_result``:
{'result': 'failed' | 'stopped', 'step': the play, 'host': where, 'reason': the first lines of the message}.
A site with no record went through every step. Used by the fleet role's gate and report tasks (filters
``fleet_gate`` and ``fleet_report``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime

FAILED = 'failed'
STOPPED = 'stopped'
SUCCEEDED = 'succeeded'


def failed_sites(records):
    """Sites whose record says failed. ``records``: site -> record or None."""
    return sorted(site for site, record in records.items() if (record or {}).get('result') == FAILED)


def gate(records, total, max_failed_percent):
    """Whether a site not yet failed may start its next batch: (True, '') or (False, why).

    The run stops starting sites once the failed share of all the run's sites is above ``max_failed_percent``
    (0: the first failure stops the next batches)."""
    failed = failed_sites(records)
    total = max(int(total), 1)
    share = 100.0 * len(failed) / total
    if share > float(max_failed_percent):
        return False, ('not started: %d of %d site(s) failed (%s), %.0f%% above wazo_mm_fleet_max_failed_percent=%s'
                       % (len(failed), total, ', '.join(failed), share, max_failed_percent))
    return True, ''


def _seconds_between(steps, first, last):
    ends = dict((s.get('step'), s.get('ended')) for s in steps or [])
    try:
        start = datetime.strptime(ends[first].rstrip('Z')[:26], '%Y-%m-%dT%H:%M:%S.%f')
        end = datetime.strptime(ends[last].rstrip('Z')[:26], '%Y-%m-%dT%H:%M:%S.%f')
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return round((end - start).total_seconds(), 1)


def _version(value):
    """A version as one text: the report's from/target may be {'primary': v, 'secondary': v}."""
    if isinstance(value, dict):
        found = sorted(set(str(v) for v in value.values() if v not in (None, '')))
        return '/'.join(found) or None
    return value


def _calls(value):
    """Calls on the primary at the switch: the report keeps Kamailio's dialogs and Asterisk's channels."""
    if isinstance(value, dict):
        counts = [value.get(k) for k in ('kamailio', 'asterisk') if isinstance(value.get(k), int)]
        return max(counts) if counts else None
    return value


def site_line(site, record=None, report=None, versions=None):
    """One site's line of the fleet report.

    ``record``: the site's fleet record (None: every step done); ``report``: the upgrade role's report of the
    site (``wazo_mm_upgrade_report``), if it got that far; ``versions``: {'before': ..., 'after': ...} read
    by the run (the report's from/target win)."""
    report = report or {}
    versions = versions or {}
    record = record or {}
    result = record.get('result') or (report.get('result') if report else None) or SUCCEEDED
    drain = report.get('drain') or {}
    return {
        'site': site,
        'result': result,
        'before': _version(report.get('from')) or _version(versions.get('before')),
        'after': _version(report.get('target')) if result == SUCCEEDED and report else _version(versions.get('after')),
        'maintenance_seconds': _seconds_between(report.get('steps'), 'switch to maintenance', 'switch to normal'),
        'calls_drained': _calls(drain.get('calls_at_switch')),
        'drain': drain.get('outcome'),
        'step': record.get('step'),
        'reason': record.get('reason') or '',
        'seconds': report.get('seconds'),
    }


def _cell(value, empty='-'):
    return empty if value in (None, '') else str(value)


def render(lines):
    """The fleet report as text: a table, one line per site, then each failure's reason."""
    head = ('site', 'result', 'before', 'after', 'in maintenance', 'calls drained', 'time')
    rows = [head]
    for line in lines:
        rows.append((line['site'], line['result'], _cell(line['before']), _cell(line['after']),
                     _cell(None if line['maintenance_seconds'] is None else '%.0f s' % line['maintenance_seconds']),
                     _cell(line['calls_drained']),
                     _cell(None if line['seconds'] in (None, '') else '%.0f s' % float(line['seconds']))))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    text = ['  '.join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    counts = {}
    for line in lines:
        counts[line['result']] = counts.get(line['result'], 0) + 1
    text.append('%d site(s): %s' % (len(lines), ', '.join('%d %s' % (n, r) for r, n in sorted(counts.items()))))
    for line in lines:
        if line['result'] != SUCCEEDED:
            text.append('%s %s at "%s": %s' % (line['site'], line['result'], line['step'] or '?', line['reason']))
    return '\n'.join(text)
