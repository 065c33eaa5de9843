# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cel_sync against two real PostgreSQL 15 clusters on loopback (no lab).

Each cluster is a throwaway ``initdb`` in a temporary directory, run by the OS user ``postgres`` when the
tests run as root (else by the current user), with the ``asterisk`` role, database and the ``cel`` table of
``tests/standin/files/schema.sql``. The module is run the way Ansible runs it on a stack: through the
``ansible`` CLI, with the system Python (``/usr/bin/python3`` and Debian's ``python3-psycopg2``, as on a
Wazo stack). Skipped, with the reason, when the PostgreSQL binaries or python3-psycopg2 are missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.cel_sync import LOCK_KEY
from ansible_collections.wazo.maintenance_mode.plugins.modules import cel_sync

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SCHEMA = os.path.join(ROOT, 'tests', 'standin', 'files', 'schema.sql')
SYSTEM_PYTHON = '/usr/bin/python3'
PASSWORD = 'odbc-secret-4f1b'
ANSIBLE = os.path.join(os.path.dirname(os.sys.executable), 'ansible')
SINCE = '2026-11-30T10:00:00Z'
UNTIL = '2026-11-30T11:00:00Z'


def _pg_bindir():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    return os.path.dirname(found[-1]) if found else None


def _skip_reason():
    if _pg_bindir() is None:
        return 'PostgreSQL server binaries missing (apt-get install postgresql-15; lab/host-setup.sh installs it)'
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.call([SYSTEM_PYTHON, '-c', 'import psycopg2'],
                                                            stderr=subprocess.DEVNULL) != 0:
        return 'python3-psycopg2 missing for %s (apt-get install python3-psycopg2)' % SYSTEM_PYTHON
    if not os.path.exists(ANSIBLE):
        return 'ansible CLI missing beside %s' % os.sys.executable
    if os.geteuid() == 0:
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            return 'running as root without a postgres OS user to run the clusters'
    return None


needs_pg = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or '')


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster(object):
    def __init__(self, base, name):
        self.bindir = _pg_bindir()
        self.dir = os.path.join(base, name)
        self.data = os.path.join(self.dir, 'data')
        self.port = _free_port()
        self.user = 'postgres' if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            pw = pwd.getpwnam('postgres')
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def run(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ['runuser', '-u', 'postgres', '--'] + argv
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)

    def start(self):
        self.run([os.path.join(self.bindir, 'initdb'), '-D', self.data, '-U', 'postgres', '-E', 'UTF8',
                  '--locale=C', '--auth-local=peer', '--auth-host=scram-sha-256'])
        with open(os.path.join(self.data, 'postgresql.auto.conf'), 'a') as fh:
            fh.write("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
                     "fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n" % (self.port, self.dir))
        if self.user != 'postgres':  # peer auth maps the OS user to the postgres role
            with open(os.path.join(self.data, 'pg_ident.conf'), 'a') as fh:
                fh.write('self %s postgres\n' % self.user)
            with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as fh:
                fh.write('local all all peer map=self\nhost all all 127.0.0.1/32 scram-sha-256\n')
        self.run([os.path.join(self.bindir, 'pg_ctl'), '-D', self.data, '-l', os.path.join(self.dir, 'log'),
                  '-w', '-t', '60', 'start'])
        self.psql("CREATE ROLE asterisk LOGIN PASSWORD '%s'" % PASSWORD, db='postgres')
        self.psql('CREATE DATABASE asterisk OWNER asterisk', db='postgres')
        with open(SCHEMA) as fh:
            self.psql('SET ROLE asterisk;\n' + fh.read())  # the tables belong to asterisk, as on Wazo

    def stop(self):
        subprocess.call((['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []) + [
            os.path.join(self.bindir, 'pg_ctl'), '-D', self.data, '-m', 'immediate', 'stop'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql, db='asterisk', user='postgres'):
        return self.run([os.path.join(self.bindir, 'psql'), '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
                         '-h', self.dir, '-p', str(self.port), '-U', user, '-d', db], input=sql).stdout

    def rows(self, where='TRUE'):
        """Every row as canonical JSON without id and call_log_id, sorted."""
        out = self.psql("SELECT (to_jsonb(c) - 'id' - 'call_log_id')::text FROM cel c WHERE %s ORDER BY 1" % where)
        return out.splitlines()

    def count(self, where='TRUE'):
        return int(self.psql('SELECT count(*) FROM cel WHERE %s' % where).strip())

    def count_locks(self):
        return int(self.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", db='postgres').strip())


@pytest.fixture(scope='module')
def clusters():
    base = tempfile.mkdtemp(prefix='wazo-mm-cel-sync-')
    os.chmod(base, 0o755)
    made = []
    try:
        for name in ('primary', 'secondary'):
            c = Cluster(base, name)
            made.append(c)
            c.start()
        yield made
    finally:
        for c in made:
            c.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pair(clusters):
    for c in clusters:
        c.psql('TRUNCATE cel, call_log RESTART IDENTITY')
    return clusters


def cel_insert(cluster, rows):
    """rows: (linkedid, eventtype, eventtime text, channame[, extra SQL literal])."""
    values = []
    for r in rows:
        extra = r[4] if len(r) > 4 else "''"
        values.append("('%s', '%s', 'PJSIP/%s', '%s', '%s', 'Alice', '1000', 'incoming', %s)" % (
            r[1], r[2], r[3], r[0], r[0], extra))
    cluster.psql('INSERT INTO cel (eventtype, eventtime, channame, uniqueid, linkedid, cid_name, cid_num, '
                 'context, extra) VALUES %s' % ', '.join(values))


def call(linkedid, second, usec=0, chan='a-0001'):
    """The five rows of one call (CHAN_START, ANSWER, HANGUP, CHAN_END, LINKEDID_END)."""
    def ts(k):
        return '2026-11-30 10:%02d:%02d.%06d' % ((second + k) // 60, (second + k) % 60, usec)
    return [(linkedid, e, ts(k), chan) for k, e in enumerate(
        ['CHAN_START', 'ANSWER', 'HANGUP', 'CHAN_END', 'LINKEDID_END'])]


def run(pair, check=False, diff=False, become=False, **extra):
    local, peer = pair
    args = dict(since=SINCE, until=UNTIL, settle=0, eventtime_zone='utc', local_name='primary',
                peer_name='secondary', local_host='127.0.0.1', local_port=local.port, local_user='asterisk',
                local_password=PASSWORD, peer_host='127.0.0.1', peer_port=peer.port, peer_password=PASSWORD)
    if become:
        args.update(local_host=local.dir, local_user='postgres')
        args.pop('local_password')
    args.update(extra)
    args = dict((k, v) for k, v in args.items() if v is not None)
    argv = [ANSIBLE, 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'wazo.maintenance_mode.cel_sync',
            '-a', json.dumps(args), '-e', 'ansible_python_interpreter=%s' % SYSTEM_PYTHON]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if become:
        argv += ['--become', '--become-method', 'su', '--become-user', 'postgres']
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('ansible output is not JSON (rc %s): %s %s' % (proc.returncode, proc.stdout, proc.stderr))
    result = out['plays'][0]['tasks'][0]['hosts']['localhost']
    result['_raw'] = proc.stdout + proc.stderr
    return result


@needs_pg
def test_copies_both_ways_then_nothing(pair):
    local, peer = pair
    common = call('1700000001.1', 0) + call('1700000002.1', 10)
    cel_insert(local, common + call('1700000003.1', 20, chan='b-0002'))      # the secondary lost it
    cel_insert(peer, call('1700000004.1', 30) + common + call('1700000005.1', 40))  # the primary lost these
    local.psql("INSERT INTO call_log (date, linkedid) VALUES (now(), '1700000001.1');"
               "UPDATE cel SET call_log_id = 1 WHERE linkedid = '1700000001.1'")
    r = run(pair)
    assert not r.get('failed'), r
    assert r['changed'] is True
    assert (r['inserted_local'], r['inserted_peer']) == (10, 5)
    assert r['inserted'] == {'primary': 10, 'secondary': 5}
    assert (r['rows_local'], r['rows_peer'], r['compared']) == (15, 20, 35)
    assert r['linkedids'] == {'primary': 2, 'secondary': 1}
    assert r['window']['since'] == '2026-11-30T10:00:00.000000Z' and r['window']['seconds'] == 3600
    assert 'id' not in r['identity_columns'] and 'call_log_id' not in r['identity_columns']
    assert local.rows() == peer.rows() and len(local.rows()) == 25
    # inserted rows wait for wazo-call-logs; the rows already processed keep their call log
    assert local.count("linkedid IN ('1700000004.1', '1700000005.1') AND call_log_id IS NULL") == 10
    assert peer.count("linkedid = '1700000003.1' AND call_log_id IS NULL") == 5
    assert local.count('call_log_id = 1') == 5

    again = run(pair)
    assert again['changed'] is False and again['inserted'] == {'primary': 0, 'secondary': 0}
    assert again['compared'] == 50


@needs_pg
def test_check_mode_counts_and_inserts_nothing_diff_by_linkedid(pair):
    local, peer = pair
    cel_insert(local, call('1700000010.1', 0))
    cel_insert(peer, call('1700000010.1', 0) + call('1700000011.1', 5))
    r = run(pair, check=True, diff=True)
    assert r['changed'] is True and r['inserted'] == {'primary': 5, 'secondary': 0}
    assert local.count() == 5 and peer.count() == 10
    diff = r['diff'][0] if isinstance(r['diff'], list) else r['diff']
    assert diff['before'] == 'primary: 5 rows\nsecondary: 10 rows\n'
    assert 'primary: 10 rows (+5)\n  + linkedid 1700000011.1: 5 rows\nsecondary: 10 rows (+0)' in diff['after']


@needs_pg
def test_exact_identity_microseconds_and_null_vs_empty(pair):
    local, peer = pair
    cel_insert(local, [('9.1', 'ANSWER', '2026-11-30 10:00:00.000001', 'a'),
                       ('9.1', 'HANGUP', '2026-11-30 10:00:01', 'a', 'NULL')])
    cel_insert(peer, [('9.1', 'ANSWER', '2026-11-30 10:00:00.000002', 'a'),
                      ('9.1', 'HANGUP', '2026-11-30 10:00:01', 'a', "''")])
    r = run(pair)
    assert r['inserted'] == {'primary': 2, 'secondary': 2}
    assert local.rows() == peer.rows() and local.count() == 4
    assert local.psql("SELECT eventtime FROM cel WHERE eventtype = 'ANSWER' ORDER BY eventtime").split() == [
        '2026-11-30', '10:00:00.000001', '2026-11-30', '10:00:00.000002']
    assert run(pair)['changed'] is False


@needs_pg
def test_duplicates_are_a_multiset(pair):
    local, peer = pair
    row = ('8.1', 'USER_DEFINED', '2026-11-30 10:05:00', 'a')
    cel_insert(local, [row, row, row])
    cel_insert(peer, [row])
    r = run(pair)
    assert r['inserted'] == {'primary': 0, 'secondary': 2}
    assert local.count() == peer.count() == 3
    assert run(pair)['changed'] is False


@needs_pg
def test_window_bounds_are_inclusive_and_outside_is_left_alone(pair):
    local, peer = pair
    cel_insert(peer, [('7.1', 'BEFORE', '2026-11-30 09:59:59.999999', 'a'),
                      ('7.1', 'START', '2026-11-30 10:00:00', 'a'),
                      ('7.1', 'END', '2026-11-30 11:00:00', 'a'),
                      ('7.1', 'AFTER', '2026-11-30 11:00:00.000001', 'a')])
    r = run(pair)
    assert r['inserted'] == {'primary': 2, 'secondary': 0}
    assert local.psql('SELECT eventtype FROM cel ORDER BY eventtime').split() == ['START', 'END']
    r = run(pair, since='2026-11-30T10:59:59.999999+01:00', until='2026-11-30T12:00:00.000001+01:00')
    assert r['inserted'] == {'primary': 2, 'secondary': 0}  # BEFORE and AFTER, the window given with an offset
    assert r['window'] == {'since': '2026-11-30T09:59:59.999999Z', 'until': '2026-11-30T11:00:00.000001Z',
                           'seconds': 3600.0}
    assert local.rows() == peer.rows()


@needs_pg
def test_password_never_shown_and_bad_password_fails_cleanly(pair):
    local, peer = pair
    cel_insert(local, call('6.1', 0))
    r = run(pair, peer_password='wrong-' + PASSWORD)
    assert r.get('failed') is True
    assert 'cannot connect to the secondary database' in r['msg']
    assert PASSWORD not in r['_raw']
    assert peer.count() == 0
    ok = run(pair)
    assert ok['inserted'] == {'primary': 0, 'secondary': 5} and PASSWORD not in ok['_raw']


@needs_pg
def test_a_second_run_at_the_same_time_is_refused(pair):
    local, peer = pair
    holder = subprocess.Popen(
        (['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []) + [
            os.path.join(peer.bindir, 'psql'), '-X', '-h', peer.dir, '-p', str(peer.port), '-U', 'postgres',
            '-d', 'asterisk', '-c', 'SELECT pg_advisory_lock(%d), pg_sleep(30)' % LOCK_KEY],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and peer.count_locks() == 0:
            time.sleep(0.1)
        r = run(pair)
        assert r.get('failed') is True and 'another cel_sync holds the lock on the secondary' in r['msg']
    finally:
        peer.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'", db='postgres')
        holder.wait(timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason='the Unix-socket peer login as postgres needs root to become postgres')
def test_the_roles_connection_become_postgres_over_the_unix_socket(pair):
    local, peer = pair
    cel_insert(peer, call('5.1', 0))
    r = run(pair, become=True)
    assert not r.get('failed'), r
    assert r['inserted'] == {'primary': 5, 'secondary': 0}
    assert local.rows() == peer.rows()


def test_without_psycopg2_the_module_says_what_to_install(monkeypatch):
    import sys
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    class Done(Exception):
        pass

    def fail_json(self, **kw):
        raise Done(kw)

    monkeypatch.setitem(sys.modules, 'psycopg2', None)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    with patch_module_args({'since': SINCE, 'peer_host': '127.0.0.1'}):
        with pytest.raises(Done) as exc:
            cel_sync.main()
    assert 'psycopg2' in exc.value.args[0]['msg']


def test_a_bad_window_fails_before_connecting(monkeypatch):
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    class Done(Exception):
        pass

    def fail_json(self, **kw):
        raise Done(kw)

    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    with patch_module_args({'since': '2026-11-30T11:00:00Z', 'until': '2026-11-30T10:00:00Z',
                            'peer_host': '192.0.2.1'}):
        with pytest.raises(Done) as exc:
            cel_sync.main()
    assert 'ends' in exc.value.args[0]['msg']
