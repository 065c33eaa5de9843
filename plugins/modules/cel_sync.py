#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cel_sync
short_description: Make the CEL rows of a time window identical on both Wazo stacks
version_added: 0.2.0
description:
  - Each stack's Asterisk writes its CEL rows into its own C(cel) table and, through cel_odbc, into the
    peer's. Rows produced while the peer's PostgreSQL was down (its upgrade), while cel_odbc to the peer was
    off (peer unreachable when Asterisk started), or the first insert after the peer's PostgreSQL restarted,
    exist on one side only. This module, run on one stack, reads the rows of the window O(since)..O(until)
    in the local database and in the peer's, and inserts into each side the rows it lacks.
  - B(Identity of a row.) Every column both tables have except C(id) and C(call_log_id) (at least
    C(eventtime), C(eventtype), C(uniqueid), C(linkedid), C(channame)). Values are compared exactly, by the
    server, as C(md5) of the row's text form with C(DateStyle=ISO) and C(TimeZone=UTC) (timestamps to the
    microsecond, NULL distinct from an empty string); only the rows to copy are transferred in full. The
    columns' types must be the same on both sides, otherwise the module fails before any change.
  - B(Multiset, no duplicate, idempotent.) A row held n times on one side and m < n times on the other is
    copied n - m times; afterwards both sides hold the same rows, and a second run inserts nothing
    (C(changed=false)).
  - Inserted rows get a new C(id) from the side's sequence and C(call_log_id) NULL, so the side's
    C(wazo-call-logs) generates their call logs.
  - B(One transaction per side.) The peer's transaction is committed first, then the local one; if the
    second commit fails, a rerun copies what is still missing.
  - One run at a time, per database (C(pg_try_advisory_lock)); a second concurrent run fails at once.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
requirements:
  - psycopg2 on the host running the module (C(python3-psycopg2) on Debian; present on Wazo stacks).
attributes:
  check_mode:
    support: full
    description: Reads both sides and counts the rows it would insert; inserts nothing.
  diff_mode:
    support: full
    description: Rows of the window on each side before, and after with the rows added, grouped by linkedid.
options:
  since:
    description:
      - Start of the window (inclusive), ISO-8601, UTC unless an offset is given, for example
        C(2026-12-01T10:00:00Z).
    type: str
    required: true
  until:
    description:
      - End of the window (inclusive), same format. Default (and upper limit) is the time the module starts; the rows are then
        read O(settle) seconds later, once cel_odbc has written the latest ones on both sides.
    type: str
  settle:
    description:
      - Seconds to wait between the end of the window and the reading of the rows, so that a row whose copy
        to the other side is still in flight is not copied twice. Only waited when the window ends less than
        O(settle) seconds ago.
    type: float
    default: 10
  eventtime_zone:
    description:
      - How the naive C(eventtime) values (C(timestamp without time zone), Wazo's column) are to be read.
        V(local) is the local time of the host running the module (cel_odbc's default, C(usegmtime = no));
        V(utc) when Asterisk writes GMT. Not used when the column is C(timestamp with time zone).
    type: str
    choices: [local, utc]
    default: local
  database:
    description: The database holding the CEL table, on both sides.
    type: str
    default: asterisk
  table:
    description: The CEL table, on both sides.
    type: str
    default: cel
  local_host:
    description:
      - The local PostgreSQL. The default is the Unix socket directory, where Debian's C(local all postgres
        peer) line lets in the OS user C(postgres) only, so run the task with C(become_user=postgres).
        Use V(127.0.0.1) with O(local_user=asterisk) and O(local_password) to connect over TCP instead.
    type: str
    default: /var/run/postgresql
  local_port:
    description: Port of the local PostgreSQL (also names its Unix socket).
    type: int
    default: 5432
  local_user:
    description: PostgreSQL role for the local database.
    type: str
    default: postgres
  local_password:
    description: Password of O(local_user), when the local connection needs one.
    type: str
  local_name:
    description: Name of the local side in the result and the diff (for example V(primary)).
    type: str
    default: local
  peer_host:
    description:
      - Address of the peer stack's PostgreSQL. The cel_odbc role lets this stack's address in as
        C(asterisk) on the peer's C(asterisk) database (C(hostnossl) line in its pg_hba.conf).
    type: str
    required: true
  peer_port:
    description: Port of the peer's PostgreSQL.
    type: int
    default: 5432
  peer_user:
    description: PostgreSQL role on the peer (the one cel_odbc writes with).
    type: str
    default: asterisk
  peer_password:
    description:
      - Password of O(peer_user) on the peer (the C(wazo_mm_odbc_password) of this stack). Never logged.
    type: str
  peer_sslmode:
    description:
      - libpq C(sslmode) of the peer connection. The cel_odbc role's pg_hba line is C(hostssl) (TLS required) unless
        the operator opted out (C(host)), hence V(prefer) - TLS whenever the peer offers it.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  peer_name:
    description: Name of the peer in the result and the diff (for example V(secondary)).
    type: str
    default: peer
  connect_timeout:
    description: Seconds to wait for each connection.
    type: int
    default: 10
notes:
  - The module only reads and inserts CEL rows; it never updates or deletes one.
  - Run it after C(asterisk -rx 'module reload cel_odbc.so') on both stacks, so that cel_odbc writes to both
    sides again before the window ends (the upgrade role does).
seealso:
  - name: The upgrade role's CEL continuity step
    description: C(roles/upgrade/tasks/cel_continuity.yml) runs this module after the switch back to normal.
    link: https://github.com/wazo-platform/wazo-maintenance-mode
'''

EXAMPLES = r'''
- name: Copy the CEL rows each stack lacks since the upgrade started (run on the primary)
  wazo.maintenance_mode.cel_sync:
    since: "2026-12-01T09:55:00Z"
    peer_host: 192.0.2.12
    peer_password: "{{ wazo_mm_odbc_password }}"
    local_name: primary
    peer_name: secondary
  become: true
  become_user: postgres
  delegate_to: wazo1.example.com

- name: What would be copied for a closed window, over TCP on both sides
  wazo.maintenance_mode.cel_sync:
    since: "2026-12-01T09:55:00Z"
    until: "2026-12-01T11:00:00Z"
    local_host: 127.0.0.1
    local_user: asterisk
    local_password: "{{ wazo_mm_odbc_password }}"
    peer_host: 192.0.2.12
    peer_password: "{{ wazo_mm_odbc_password }}"
  check_mode: true
  diff: true
'''

RETURN = r'''
inserted:
  description: Rows inserted on each side, by O(local_name) and O(peer_name) (in check mode, rows that would be).
  returned: always
  type: dict
  sample: {primary: 12, secondary: 3}
inserted_local:
  description: Rows inserted into the local table (in check mode, that would be).
  returned: always
  type: int
inserted_peer:
  description: Rows inserted into the peer's table (in check mode, that would be).
  returned: always
  type: int
rows_local:
  description: Rows of the window in the local table before the run.
  returned: always
  type: int
rows_peer:
  description: Rows of the window in the peer's table before the run.
  returned: always
  type: int
compared:
  description: Rows compared (both sides).
  returned: always
  type: int
linkedids:
  description: Per side, the number of distinct linkedids (calls) that got rows.
  returned: always
  type: dict
  sample: {primary: 4, secondary: 1}
window:
  description: The window compared, ISO-8601 UTC, and its length in seconds.
  returned: always
  type: dict
  sample: {since: "2026-12-01T09:55:00.000000Z", until: "2026-12-01T11:02:13.512000Z", seconds: 4033.5}
identity_columns:
  description: The columns that identify a row.
  returned: always
  type: list
  elements: str
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.cel_sync import (
    CelSyncError,
    by_linkedid,
    diff_summary,
    format_utc,
    prepare_session,
    sync,
    try_lock,
    window,
)


def argument_spec():
    return dict(
        since=dict(type='str', required=True),
        until=dict(type='str'),
        settle=dict(type='float', default=10),
        eventtime_zone=dict(type='str', choices=['local', 'utc'], default='local'),
        database=dict(type='str', default='asterisk'),
        table=dict(type='str', default='cel'),
        local_host=dict(type='str', default='/var/run/postgresql'),
        local_port=dict(type='int', default=5432),
        local_user=dict(type='str', default='postgres'),
        local_password=dict(type='str', no_log=True),
        local_name=dict(type='str', default='local'),
        peer_host=dict(type='str', required=True),
        peer_port=dict(type='int', default=5432),
        peer_user=dict(type='str', default='asterisk'),
        peer_password=dict(type='str', no_log=True),
        peer_sslmode=dict(type='str', default='prefer',
                          choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
        peer_name=dict(type='str', default='peer'),
        connect_timeout=dict(type='int', default=10),
    )


def connect(psycopg2, p, side):
    kwargs = dict(host=p[side + '_host'], port=p[side + '_port'], dbname=p['database'], user=p[side + '_user'],
                  connect_timeout=p['connect_timeout'], application_name='wazo_mm cel_sync')
    if p[side + '_password']:
        kwargs['password'] = p[side + '_password']
    if side == 'peer':
        kwargs['sslmode'] = p['peer_sslmode']
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    cur = conn.cursor()
    prepare_session(cur)
    if not try_lock(cur):
        conn.close()
        raise CelSyncError('another cel_sync holds the lock on the %s database (%s): try again later'
                           % (p[side + '_name'], p[side + '_host']))
    conn.autocommit = False
    return conn


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    names = (p['local_name'], p['peer_name'])
    try:
        since, until, wait = window(p['since'], p['until'], p['settle'])
    except CelSyncError as exc:
        module.fail_json(msg=str(exc))
    try:
        import psycopg2
        from psycopg2.extras import execute_values
    except ImportError:
        module.fail_json(msg=missing_required_lib('psycopg2 (python3-psycopg2)'))

    if wait > 0:
        time.sleep(wait)
    conns = []
    try:
        for side in ('local', 'peer'):
            try:
                conns.append(connect(psycopg2, p, side))
            except psycopg2.Error as exc:
                raise CelSyncError('cannot connect to the %s database (%s port %s, user %s): %s' % (
                    p[side + '_name'], p[side + '_host'], p[side + '_port'], p[side + '_user'],
                    str(exc).strip()))
        res = sync(conns[0], conns[1], p['table'], since, until, p['eventtime_zone'],
                   check_mode=module.check_mode, execute_values=execute_values)
    except CelSyncError as exc:
        module.fail_json(msg=str(exc))
    except psycopg2.Error as exc:
        module.fail_json(msg='cel_sync failed, nothing committed on a side whose transaction did not end: %s'
                         % str(exc).strip())
    finally:
        for conn in conns:
            conn.close()

    to_local, to_peer = res['to_local'], res['to_peer']
    counts = (len(to_local), len(to_peer)) if module.check_mode else res['inserted']
    result = dict(
        changed=bool(counts[0] or counts[1]),
        inserted={names[0]: counts[0], names[1]: counts[1]},
        inserted_local=counts[0],
        inserted_peer=counts[1],
        rows_local=res['counts'][0],
        rows_peer=res['counts'][1],
        compared=res['counts'][0] + res['counts'][1],
        linkedids={names[0]: len(by_linkedid(to_local)), names[1]: len(by_linkedid(to_peer))},
        window=dict(since=format_utc(since), until=format_utc(until),
                    seconds=round((until - since).total_seconds(), 3)),
        identity_columns=res['columns'],
    )
    if module._diff:
        result['diff'] = diff_summary(names, res['counts'], to_local, to_peer)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
