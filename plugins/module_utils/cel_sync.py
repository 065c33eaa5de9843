# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make two stacks' ``cel`` tables hold the same rows for a time window (module ``cel_sync``).

Each stack's Asterisk writes its CEL rows into its own database and, through cel_odbc, into the peer's.
Rows produced while the peer's PostgreSQL was down (its upgrade), or while cel_odbc to it was off, exist on
one side only. This module finds them and copies them over.

Identity of a row: every column both tables have except ``id`` (a per-database sequence) and
``call_log_id`` (set by each stack's own wazo-call-logs). Rows are compared as a multiset: a key present
n times on one side and m < n times on the other gets n - m copies, so two runs never duplicate anything
and a second run inserts nothing. The comparison is exact: the server computes
``md5(convert_to(ROW(<identity columns>)::text, 'UTF8'))`` with ``DateStyle=ISO`` and ``TimeZone=UTC``
(timestamps to the microsecond, NULL distinct from ''), and only the rows to copy travel in full.

Standard library only at import time; psycopg2 is imported by the module when it connects.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re
import time
from collections import Counter, OrderedDict

EXCLUDED_COLUMNS = ('id', 'call_log_id')
REQUIRED_COLUMNS = ('eventtime', 'eventtype', 'uniqueid', 'linkedid', 'channame')
TIMESTAMPTZ = 'timestamp with time zone'
# pg_try_advisory_lock key: one cel_sync at a time per database ('wazo_mm_cel_sync' in hex, truncated).
LOCK_KEY = 0x77617a6f5f6d6d
DIFF_LINKEDIDS = 50
_IDENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_$]*$')
_ISO = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?'
                  r'\s*(Z|[+-]\d{2}:?\d{2})?$')
UTC = datetime.timezone.utc


class CelSyncError(Exception):
    """The two tables cannot be compared (bad window, columns, types)."""


# ---------------------------------------------------------------- time window

def parse_utc(value):
    """An ISO-8601 timestamp as an aware UTC datetime. No offset means UTC (``Z`` accepted)."""
    m = _ISO.match((value or '').strip())
    if not m:
        raise CelSyncError('not an ISO-8601 timestamp: %r (expected e.g. 2026-12-01T10:00:00Z)' % (value,))
    year, month, day, hour, minute, sec, frac, offset = m.groups()
    micro = int((frac or '0').ljust(6, '0'))
    try:
        dt = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec or 0), micro)
    except ValueError as exc:
        raise CelSyncError('not a valid timestamp: %r (%s)' % (value, exc))
    tz = UTC
    if offset and offset != 'Z':
        sign = -1 if offset[0] == '-' else 1
        digits = offset[1:].replace(':', '')
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return dt.replace(tzinfo=tz).astimezone(UTC)


def format_utc(dt):
    """``2026-12-01T10:00:00.000000Z`` for an aware datetime."""
    return dt.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def db_time(dt, zone, column_type):
    """The value to compare ``eventtime`` with. A ``timestamp with time zone`` column gets the aware instant;
    a ``timestamp`` column (Wazo's) gets the naive time as Asterisk wrote it: UTC, or the local time of the
    host running the module (cel_odbc's default, ``usegmtime = no``)."""
    if column_type == TIMESTAMPTZ:
        return dt
    if zone == 'utc':
        return dt.astimezone(UTC).replace(tzinfo=None)
    return dt.astimezone().replace(tzinfo=None)


def window(since, until=None, settle=0.0, clock=time.time):
    """``(since, until, wait)`` as aware UTC datetimes and the seconds to wait before reading.

    Without ``until`` (or with one in the future) the window ends now. Rows stamped up to the end are read
    ``settle`` seconds after it, once cel_odbc has written them on both sides (otherwise a row seen on one
    side only, its copy still in flight, would be copied twice)."""
    start = parse_utc(since)
    now = datetime.datetime.fromtimestamp(clock(), UTC)
    end = min(parse_utc(until), now) if until else now
    if end < start:
        raise CelSyncError('the window ends (%s) before it starts (%s)' % (format_utc(end), format_utc(start)))
    wait = max(0.0, float(settle or 0) - (now - end).total_seconds())
    return start, end, wait


# ---------------------------------------------------------------- columns and keys

def quote_ident(name):
    if not _IDENT.match(name or ''):
        raise CelSyncError('not a plain SQL identifier: %r' % (name,))
    return '"%s"' % name


def identity_columns(local_columns, peer_columns):
    """The columns that identify a row: those of both tables, in the local table's order, minus id and
    call_log_id. ``*_columns`` map a column name to its data type; the types must match."""
    common = [c for c in local_columns if c in peer_columns and c not in EXCLUDED_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in common]
    if missing:
        raise CelSyncError('the cel tables lack %s on one side (local columns: %s; peer columns: %s)' % (
            ', '.join(missing), ', '.join(local_columns) or 'none', ', '.join(peer_columns) or 'none'))
    differ = ['%s (%s / %s)' % (c, local_columns[c], peer_columns[c])
              for c in common if local_columns[c] != peer_columns[c]]
    if differ:
        raise CelSyncError('column types differ between the two sides, rows cannot be compared: %s'
                           % '; '.join(differ))
    return common


def key_sql(columns):
    """SQL expression of a row's identity key (see the module docstring)."""
    return "md5(convert_to(ROW(%s)::text, 'UTF8'))" % ', '.join(quote_ident(c) for c in columns)


def identity_key(row, columns):
    """Python counterpart of ``key_sql`` for rows held as dicts: the tuple of the identity columns."""
    return tuple(row.get(c) for c in columns)


# ---------------------------------------------------------------- what to copy

def plan_copies(local_rows, peer_rows):
    """Which rows to copy each way. Rows are ``(id, key, linkedid)`` in the order read (eventtime, id).

    Returns ``(to_local, to_peer)``: the peer's rows the local side lacks, and the local rows the peer lacks,
    as lists of ``(id, key, linkedid)`` in read order. Multiset: a key held n times on one side and m times on
    the other (n > m) is copied n - m times, so afterwards both hold it max(n, m) times."""
    local_count = Counter(r[1] for r in local_rows)
    peer_count = Counter(r[1] for r in peer_rows)
    return _excess(peer_rows, peer_count, local_count), _excess(local_rows, local_count, peer_count)


def _excess(rows, have, other):
    need = dict((k, n - other.get(k, 0)) for k, n in have.items() if n > other.get(k, 0))
    out = []
    for row in rows:
        left = need.get(row[1], 0)
        if left > 0:
            out.append(row)
            need[row[1]] = left - 1
    return out


def by_linkedid(rows):
    """``{linkedid: count}`` in first-seen order."""
    out = OrderedDict()
    for row in rows:
        out[row[2]] = out.get(row[2], 0) + 1
    return out


def diff_summary(names, counts, to_local, to_peer, limit=DIFF_LINKEDIDS):
    """Ansible diff: rows in the window per side before, and after with what is added, by linkedid."""
    local_name, peer_name = names
    before = '%s: %d rows\n%s: %d rows\n' % (local_name, counts[0], peer_name, counts[1])
    after = []
    for name, count, rows in ((local_name, counts[0], to_local), (peer_name, counts[1], to_peer)):
        after.append('%s: %d rows (+%d)' % (name, count + len(rows), len(rows)))
        groups = list(by_linkedid(rows).items())
        for linkedid, n in groups[:limit]:
            after.append('  + linkedid %s: %d row%s' % (linkedid, n, '' if n == 1 else 's'))
        if len(groups) > limit:
            after.append('  + ... %d more linkedids' % (len(groups) - limit))
    return {'before_header': 'cel rows in the window', 'after_header': 'cel rows after cel_sync',
            'before': before, 'after': '\n'.join(after) + '\n'}


# ---------------------------------------------------------------- database (DB-API cursors)

def prepare_session(cur):
    """Same text form of every value on both servers, whatever their settings."""
    cur.execute("SET DateStyle TO 'ISO, YMD'")
    cur.execute("SET TimeZone TO 'UTC'")


def try_lock(cur):
    cur.execute('SELECT pg_try_advisory_lock(%s)', (LOCK_KEY,))
    return bool(cur.fetchone()[0])


def unlock(cur):
    cur.execute('SELECT pg_advisory_unlock(%s)', (LOCK_KEY,))


def table_columns(cur, table):
    """``OrderedDict(name -> data_type)`` of the table in the connection's search path (empty if absent)."""
    cur.execute("SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (quote_ident(table),))
    return OrderedDict((name, dtype) for name, dtype in cur.fetchall())


def read_keys(cur, table, columns, since, until):
    """``[(id, key, linkedid)]`` of the window, ordered by eventtime then id."""
    cur.execute('SELECT id, %s, linkedid FROM %s WHERE eventtime >= %%s AND eventtime <= %%s '
                'ORDER BY eventtime, id' % (key_sql(columns), quote_ident(table)), (since, until))
    return [tuple(r) for r in cur.fetchall()]


def fetch_rows(cur, table, columns, ids):
    """The identity columns of the rows ``ids``, in eventtime, id order."""
    if not ids:
        return []
    cur.execute('SELECT %s FROM %s WHERE id = ANY(%%s) ORDER BY eventtime, id' % (
        ', '.join(quote_ident(c) for c in columns), quote_ident(table)), (list(ids),))
    return cur.fetchall()


def insert_rows(cur, table, columns, rows, execute_values=None, page_size=500):
    """Insert ``rows`` (tuples in ``columns`` order); id from the sequence, call_log_id left NULL."""
    if not rows:
        return 0
    sql = 'INSERT INTO %s (%s) VALUES %%s' % (quote_ident(table), ', '.join(quote_ident(c) for c in columns))
    if execute_values is not None:
        execute_values(cur, sql, rows, page_size=page_size)
    else:
        single = sql.replace('%s', '(%s)' % ', '.join(['%s'] * len(columns)))
        cur.executemany(single, rows)
    return len(rows)


def sync(local, peer, table, since, until, zone, check_mode=False, execute_values=None):
    """Compare and copy. ``local``/``peer`` are DB-API connections (autocommit off) whose session was
    prepared and locked. Returns a dict with the columns, counts and rows to copy; commits each side when
    something was inserted (not in check mode)."""
    lcur, pcur = local.cursor(), peer.cursor()
    lcols, pcols = table_columns(lcur, table), table_columns(pcur, table)
    if not lcols:
        raise CelSyncError('table %s not found in the local database' % table)
    if not pcols:
        raise CelSyncError("table %s not found in the peer's database" % table)
    columns = identity_columns(lcols, pcols)
    ltype, ptype = lcols['eventtime'], pcols['eventtime']
    lkeys = read_keys(lcur, table, columns, db_time(since, zone, ltype), db_time(until, zone, ltype))
    pkeys = read_keys(pcur, table, columns, db_time(since, zone, ptype), db_time(until, zone, ptype))
    to_local, to_peer = plan_copies(lkeys, pkeys)
    result = {'columns': columns, 'counts': (len(lkeys), len(pkeys)), 'to_local': to_local, 'to_peer': to_peer,
              'inserted': (0, 0)}
    if check_mode or not (to_local or to_peer):
        local.rollback()
        peer.rollback()
        return result
    rows_for_local = fetch_rows(pcur, table, columns, [r[0] for r in to_local])
    rows_for_peer = fetch_rows(lcur, table, columns, [r[0] for r in to_peer])
    n_local = insert_rows(lcur, table, columns, rows_for_local, execute_values)
    n_peer = insert_rows(pcur, table, columns, rows_for_peer, execute_values)
    peer.commit()
    local.commit()
    result['inserted'] = (n_local, n_peer)
    return result
