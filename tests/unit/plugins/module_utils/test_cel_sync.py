# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The set logic of cel_sync: window, identity columns and key, what to copy each way (pure functions)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import random
from collections import Counter

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import cel_sync as cs

UTC = datetime.timezone.utc
COLUMNS = cs.OrderedDict((c, 'character varying') for c in (
    'id', 'eventtype', 'eventtime', 'cid_name', 'channame', 'uniqueid', 'linkedid', 'extra', 'call_log_id'))
COLUMNS['id'] = COLUMNS['call_log_id'] = 'integer'
COLUMNS['eventtime'] = 'timestamp without time zone'
COLUMNS['extra'] = 'text'


def cel(linkedid, eventtype, usec=0, channame='PJSIP/a-0001', extra=None):
    return {'eventtype': eventtype, 'eventtime': datetime.datetime(2026, 12, 1, 10, 0, 0, usec),
            'cid_name': 'A', 'channame': channame, 'uniqueid': linkedid, 'linkedid': linkedid, 'extra': extra}


def keyed(rows, columns, start_id=1):
    """Rows (dicts) as the module reads them: (id, key, linkedid)."""
    return [(start_id + i, cs.identity_key(r, columns), r['linkedid']) for i, r in enumerate(rows)]


def apply(local, peer):
    """Run the plan and return both sides' key multisets afterwards."""
    to_local, to_peer = cs.plan_copies(local, peer)
    return Counter(r[1] for r in local + to_local), Counter(r[1] for r in peer + to_peer), to_local, to_peer


# ---------------------------------------------------------------- window


def test_parse_utc_forms():
    want = datetime.datetime(2026, 12, 1, 10, 0, 0, 123456, UTC)
    assert cs.parse_utc('2026-12-01T10:00:00.123456Z') == want
    assert cs.parse_utc('2026-12-01 10:00:00.123456') == want
    assert cs.parse_utc('2026-12-01T11:00:00.123456+01:00') == want
    assert cs.parse_utc('2026-12-01T10:00Z') == want.replace(microsecond=0)
    assert cs.parse_utc('2026-12-01T10:00:00.1Z').microsecond == 100000


def test_parse_utc_matches_the_roles_started_format():
    # plan.yml: "{{ now(utc=true).isoformat() }}Z"
    started = datetime.datetime(2026, 12, 1, 23, 50, 33, 314626).isoformat() + 'Z'
    assert cs.format_utc(cs.parse_utc(started)) == '2026-12-01T23:50:33.314626Z'


@pytest.mark.parametrize('bad', ['', 'yesterday', '2026-13-01T00:00:00Z', '2026-12-01T10:00:00+1'])
def test_parse_utc_refuses(bad):
    with pytest.raises(cs.CelSyncError):
        cs.parse_utc(bad)


def test_window_defaults_to_now_and_waits_settle():
    now = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    start, end, wait = cs.window('2026-12-01T11:00:00Z', None, 10, clock=lambda: now)
    assert (end - start).total_seconds() == 3600 and wait == 10


def test_window_closed_in_the_past_does_not_wait_and_refuses_reversed():
    now = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert cs.window('2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z', 10, clock=lambda: now)[2] == 0
    assert cs.window('2026-12-01T10:00:00Z', '2026-12-01T11:59:55Z', 10, clock=lambda: now)[2] == 5
    future = cs.window('2026-12-01T10:00:00Z', '2027-01-01T00:00:00Z', 10, clock=lambda: now)
    assert future[1] == datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC) and future[2] == 10
    with pytest.raises(cs.CelSyncError, match='ends'):
        cs.window('2026-12-01T11:00:00Z', '2026-12-01T10:00:00Z', clock=lambda: now)


def test_db_time_naive_utc_local_and_timestamptz():
    dt = datetime.datetime(2026, 12, 1, 10, 0, 0, 5, UTC)
    assert cs.db_time(dt, 'utc', 'timestamp without time zone') == datetime.datetime(2026, 12, 1, 10, 0, 0, 5)
    assert cs.db_time(dt, 'local', 'timestamp without time zone') == dt.astimezone().replace(tzinfo=None)
    assert cs.db_time(dt, 'utc', cs.TIMESTAMPTZ) is dt


# ---------------------------------------------------------------- identity


def test_identity_columns_exclude_id_and_call_log_id_keep_order_and_common_only():
    peer = cs.OrderedDict(COLUMNS)
    peer['only_on_peer'] = 'text'
    cols = cs.identity_columns(COLUMNS, peer)
    assert cols == ['eventtype', 'eventtime', 'cid_name', 'channame', 'uniqueid', 'linkedid', 'extra']


def test_identity_columns_need_the_minimum_and_same_types():
    short = cs.OrderedDict((k, v) for k, v in COLUMNS.items() if k != 'channame')
    with pytest.raises(cs.CelSyncError, match='channame'):
        cs.identity_columns(short, COLUMNS)
    tz = cs.OrderedDict(COLUMNS)
    tz['eventtime'] = cs.TIMESTAMPTZ
    with pytest.raises(cs.CelSyncError, match='eventtime'):
        cs.identity_columns(COLUMNS, tz)


def test_key_sql_quotes_and_refuses_odd_identifiers():
    assert cs.key_sql(['eventtime', 'linkedid']) == \
        "md5(convert_to(ROW(\"eventtime\", \"linkedid\")::text, 'UTF8'))"
    with pytest.raises(cs.CelSyncError):
        cs.quote_ident('cel; DROP TABLE cel')


def test_identity_key_is_exact():
    cols = cs.identity_columns(COLUMNS, COLUMNS)
    a = cs.identity_key(cel('1.1', 'ANSWER', usec=1), cols)
    assert a == cs.identity_key(cel('1.1', 'ANSWER', usec=1), cols)
    assert a != cs.identity_key(cel('1.1', 'ANSWER', usec=2), cols)      # one microsecond apart
    assert cs.identity_key(cel('1.1', 'X', extra=''), cols) != cs.identity_key(cel('1.1', 'X'), cols)  # '' != NULL
    assert cs.identity_key(cel('1.1', 'X', channame='PJSIP/b'), cols) != cs.identity_key(cel('1.1', 'X'), cols)


# ---------------------------------------------------------------- what to copy

COLS = cs.identity_columns(COLUMNS, COLUMNS)


def test_copies_each_way_what_the_other_lacks():
    common = [cel('1.1', t, i) for i, t in enumerate(['CHAN_START', 'ANSWER', 'HANGUP'])]
    only_local = [cel('2.1', 'CHAN_START'), cel('2.1', 'CHAN_END', 9)]
    only_peer = [cel('3.1', 'LINKEDID_END', 7)]
    local = keyed(common + only_local, COLS, 1)
    peer = keyed(only_peer + common, COLS, 100)
    lset, pset, to_local, to_peer = apply(local, peer)
    assert [r[2] for r in to_local] == ['3.1'] and [r[0] for r in to_local] == [100]
    assert [r[2] for r in to_peer] == ['2.1', '2.1'] and [r[0] for r in to_peer] == [4, 5]
    assert lset == pset and sum(lset.values()) == 6


def test_nothing_to_copy_when_equal_whatever_the_ids_and_order():
    rows = [cel('1.%d' % i, 'ANSWER', i) for i in range(5)]
    local = keyed(rows, COLS, 1)
    peer = keyed(list(reversed(rows)), COLS, 50)
    assert cs.plan_copies(local, peer) == ([], [])


def test_idempotent_second_plan_is_empty():
    rng = random.Random(7)
    pool = [cel('%d.1' % (i // 5), 'E%d' % (i % 5), i) for i in range(200)]
    local = keyed([r for r in pool if rng.random() < 0.8], COLS, 1)
    peer = keyed([r for r in pool if rng.random() < 0.7], COLS, 1000)
    to_local, to_peer = cs.plan_copies(local, peer)
    assert to_local or to_peer
    local2 = local + [(5000 + i, r[1], r[2]) for i, r in enumerate(to_local)]
    peer2 = peer + [(9000 + i, r[1], r[2]) for i, r in enumerate(to_peer)]
    assert cs.plan_copies(local2, peer2) == ([], [])
    assert Counter(r[1] for r in local2) == Counter(r[1] for r in peer2)
    assert set(r[1] for r in local2) == set(r[1] for r in local) | set(r[1] for r in peer)


def test_multiset_copies_only_the_missing_duplicates():
    dup = cel('1.1', 'USER_DEFINED')
    local = keyed([dup, dup, dup], COLS, 1)
    peer = keyed([dup], COLS, 10)
    lset, pset, to_local, to_peer = apply(local, peer)
    assert to_local == [] and [r[0] for r in to_peer] == [1, 2]  # the first ones in read order
    assert lset == pset == Counter({cs.identity_key(dup, COLS): 3})


def test_one_side_empty():
    rows = keyed([cel('1.1', 'A'), cel('1.1', 'B', 1)], COLS)
    assert cs.plan_copies(rows, []) == ([], rows)
    assert cs.plan_copies([], rows) == (rows, [])
    assert cs.plan_copies([], []) == ([], [])


def test_by_linkedid_and_diff_summary():
    rows = keyed([cel('1.1', 'A'), cel('2.1', 'A', 1), cel('1.1', 'B', 2)], COLS)
    assert list(cs.by_linkedid(rows).items()) == [('1.1', 2), ('2.1', 1)]
    diff = cs.diff_summary(('primary', 'secondary'), (10, 7), [], rows, limit=1)
    assert diff['before'] == 'primary: 10 rows\nsecondary: 7 rows\n'
    assert diff['after'].splitlines() == [
        'primary: 10 rows (+0)', 'secondary: 10 rows (+3)', '  + linkedid 1.1: 2 rows', '  + ... 1 more linkedids']
