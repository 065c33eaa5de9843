# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the cel_odbc role: from each stack, isql with the rendered DSN connects to the other
stack's database, and a CEL row inserted through it appears in the peer's cel table (read with psql).
Also: the second run changes nothing, the password is never printed, the files and modes are right, the real
Asterisk of each stack is connected to the peer's database, and a real call's CEL rows land on both stacks.
The link is encrypted: Asterisk's connection to the peer is TLS (pg_stat_ssl), a connection in the clear is refused
(hostssl); the role's pg_hba line never reorders the operator's lines, comments or blank lines; a stack whose
PostgreSQL has TLS off stops the role on both stacks before any change.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_cel_odbc.py

Needs the ha role's listen_addresses (or any listen_addresses = '*') on the stacks for the TCP connection;
the test says so when the peer refuses the connection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser
import re
import shlex
import time
import uuid

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

# every test needs the lab's three hosts reachable and the stand-in on the stacks (else skipped: conftest.py)
pytestmark = pytest.mark.usefixtures('standin')

ROLE_PLAY = labtools.TOPOLOGY_PLAY + """
- name: CEL replication
  hosts: primary:secondary
  roles:
    - role: wazo.maintenance_mode.cel_odbc
"""

PEER = {'primary': 'secondary', 'secondary': 'primary'}


@pytest.fixture(scope='module')
def converged(lab):
    """Run the role twice; return (first output, second output)."""
    rc1, out1 = lab.play(ROLE_PLAY, ['--diff'])
    assert rc1 == 0, out1[-4000:]
    rc2, out2 = lab.play(ROLE_PLAY, ['--diff'])
    assert rc2 == 0, out2[-4000:]
    return out1, out2


def password(lab):
    return lab.group_vars['wazo_mm_odbc_password']


def test_second_run_changes_nothing(lab, converged):
    r = labtools.recap(converged[1])
    # the proxy may be in the recap too (preflight's topology play), with nothing changed
    assert {'primary', 'secondary'} <= set(r) and all(v['changed'] == 0 for v in r.values()), r


def test_password_never_printed(lab, converged):
    for out in converged:
        assert password(lab) not in out


def test_files_per_side(lab, converged):
    for g, peer in PEER.items():
        ini = configparser.ConfigParser(interpolation=None)
        ini.optionxform = str
        ini.read_string(lab.ssh(g, 'cat /etc/odbc.ini').stdout)
        assert ini[peer]['Servername'] == lab.hosts[peer]
        assert ini[peer]['Database'] == 'asterisk'
        assert ini[peer]['SSLmode'] == 'require'
        driver = ini[peer]['Driver']
        assert '[%s]' % driver in lab.ssh(g, 'cat /etc/odbcinst.ini').stdout, 'driver %s not installed' % driver
        res = lab.ssh(g, 'stat -c "%a %U %G" /etc/asterisk/res_odbc.d/02-active-active.conf; '
                         'cat /etc/asterisk/res_odbc.d/02-active-active.conf').stdout
        assert res.splitlines()[0] == '640 root asterisk'
        assert '[%s]' % peer in res and 'dsn => %s' % peer in res and 'username => asterisk' in res
        cel = lab.ssh(g, 'cat /etc/asterisk/cel_odbc.d/02-active-active.conf').stdout
        assert '[%s]' % peer in cel and 'connection = %s' % peer in cel and 'table = cel' in cel
        hba = lab.ssh(g, "sudo -u postgres psql -tAc 'SHOW hba_file' | xargs cat").stdout
        m = re.search(r'^hostssl\s+asterisk\s+asterisk\s+%s/32\s+(\S+)' % re.escape(lab.hosts[peer]), hba, re.M)
        assert m, hba
        assert not re.search(r'^host(nossl)?\s+asterisk\s+asterisk\s+%s/32' % re.escape(lab.hosts[peer]), hba, re.M), hba
        enc = lab.ssh(g, "sudo -u postgres psql -tAc 'SHOW password_encryption'").stdout.strip()
        assert m.group(1) in ('md5', enc)
        # the reloads made the real Asterisk connect to the peer (pre-connect) and log CEL there
        odbc = lab.ssh(g, "asterisk -rx 'odbc show %s'" % peer).stdout
        assert 'Name:   %s' % peer in odbc and 'DSN:    %s' % peer in odbc, odbc
        assert 'Number of active connections: 1' in odbc, odbc
        assert 'CEL Event Subscriber: ODBC CEL backend' in lab.ssh(g, "asterisk -rx 'cel show status'").stdout


def rendered_password(lab, g):
    res = lab.ssh(g, 'cat /etc/asterisk/res_odbc.d/02-active-active.conf').stdout
    return re.search(r'^password => (.*)$', res, re.M).group(1).replace('\\;', ';')


@pytest.mark.parametrize('side', ['primary', 'secondary'])
def test_isql_to_peer_and_cel_row_lands_there(lab, converged, side):
    peer = PEER[side]
    pw = rendered_password(lab, side)
    lab.ssh(side, 'command -v isql >/dev/null')
    probe = lab.ssh(side, 'echo "SELECT 1" | isql -v -b %s asterisk %s' % (peer, shlex.quote(pw)), check=False)
    if probe.returncode != 0 and 'Connection refused' in probe.stdout + probe.stderr:
        pytest.fail('%s refuses TCP connections from %s: listen_addresses (ha role) not set on the %s'
                    % (peer, side, peer))
    if probe.returncode != 0 and 'password authentication failed' in probe.stdout + probe.stderr:
        pytest.fail('the %s rejects the password: wazo_mm_odbc_password must be the password of its asterisk role'
                    % peer)
    assert probe.returncode == 0, (probe.stdout, probe.stderr)
    tag = 'wazo-mm-test-%s-%s' % (side, uuid.uuid4().hex[:8])
    sql = ("INSERT INTO cel (eventtype, eventtime, cid_name, uniqueid, linkedid, userdeftype) "
           "VALUES ('CHAN_START', now(), '%s', '%s', '%s', '')" % (tag, tag[-8:], tag[-8:]))
    p = lab.ssh(side, 'echo %s | isql -v -b %s asterisk %s' % (shlex.quote(sql), peer, shlex.quote(pw)), check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    found = lab.ssh(peer, "sudo -u postgres psql -d asterisk -tAc \"SELECT count(*) FROM cel WHERE cid_name = '%s'\""
                    % tag).stdout.strip()
    assert found == '1', 'the CEL row inserted from %s through ODBC is not in the %s cel table' % (side, peer)
    print('%s -> %s: isql connected, CEL row %s found on the %s' % (side, peer, tag, peer))


def _psql(lab, group, sql):
    return lab.ssh(group, 'sudo -u postgres psql -d asterisk -tAc %s' % shlex.quote(sql)).stdout.strip()


@pytest.mark.parametrize('side', ['primary', 'secondary'])
def test_a_call_writes_its_cel_on_both_stacks(lab, converged, side):
    """A real call answered by one stack's Asterisk: its CEL rows land in its own cel table and, through
    cel_odbc.d/02-active-active.conf, in the peer's."""
    peer = PEER[side]
    last = _psql(lab, side, 'SELECT coalesce(max(id), 0) FROM cel')
    # Two calls: the first insert after a restart of the peer's PostgreSQL (the ha role, the HA API) is lost
    # by res_odbc (Asterisk's behaviour); the second call is the one checked.
    ok, failed, output = labtools.sipp_call(lab.hosts[side], labtools.host_ip_towards(lab.hosts[side]),
                                            duration_ms=500, calls=2, rate=2, timeout=20, port=5072)
    assert (ok, failed) == (2, 0), output[-3000:]
    linkedid, found = '', ''
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        linkedid = _psql(lab, side, "SELECT linkedid FROM cel WHERE id > %s AND eventtype = 'LINKEDID_END' "
                                    "ORDER BY id DESC LIMIT 1" % last)
        if linkedid:
            found = _psql(lab, peer, "SELECT string_agg(eventtype, ',' ORDER BY id) FROM cel WHERE linkedid = '%s' "
                                     "AND channame LIKE 'PJSIP/anonymous-%%'" % linkedid)
            if found.endswith('LINKEDID_END'):
                break
        time.sleep(0.5)
    assert linkedid, 'no CEL row of the call in the %s cel table' % side
    assert found == 'CHAN_START,ANSWER,HANGUP,CHAN_END,LINKEDID_END', \
        'CEL of the call on the %s (linkedid %s): %r' % (peer, linkedid, found)


@pytest.mark.parametrize('side', ['primary', 'secondary'])
def test_the_link_is_encrypted_and_the_clear_is_refused(lab, converged, side):
    """The peer's Asterisk (res_odbc, pre-connected) reaches this stack over TLS; psql from the peer as asterisk with
    the right password but without TLS is refused by this stack's pg_hba (hostssl)."""
    peer = PEER[side]
    ssl = _psql(lab, side, "SELECT string_agg(s.ssl::text, ',') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                           "WHERE a.usename = 'asterisk' AND a.client_addr = '%s'" % lab.hosts[peer])
    assert ssl and set(ssl.split(',')) == {'true'}, 'connections of the %s\'s asterisk role: ssl=%r' % (peer, ssl)
    pw = shlex.quote(rendered_password(lab, peer))
    clear = lab.ssh(peer, 'PGPASSWORD=%s PGSSLMODE=disable psql -w -h %s -U asterisk -XAtc "SELECT 1" asterisk'
                    % (pw, lab.hosts[side]), check=False)
    assert clear.returncode != 0 and 'no encryption' in clear.stderr, clear
    tls = lab.ssh(peer, 'PGPASSWORD=%s PGSSLMODE=require psql -w -h %s -U asterisk -XAtc "SELECT 1" asterisk'
                  % (pw, lab.hosts[side]), check=False)
    assert (tls.returncode, tls.stdout.strip()) == (0, '1'), tls


def test_operator_lines_keep_their_order(lab, converged):
    """Lines an operator added (with a comment and a blank line) stay where they are, in their order, when the role
    adds its line again."""
    hba = lab.ssh('primary', "sudo -u postgres psql -tAc 'SHOW hba_file'").stdout.strip()
    saved = lab.ssh('primary', 'cat %s' % hba).stdout
    saved += '' if saved.endswith('\n') else '\n'
    peer = re.escape(lab.hosts['secondary'])
    operator = ['# operator: the office LAN, then nothing else from 198.51.100.0/24', '',
                'host    all    all    198.51.100.7/32    scram-sha-256',
                'host    all    all    198.51.100.0/24    reject']
    base = [line for line in saved.splitlines() if not re.match(r'^host\S*\s+asterisk\s+asterisk\s+%s/32' % peer, line)]
    try:
        # the operator's lines first, then everything else but the role's line, which the role must add back
        lab.ssh('primary', "cat > %s <<'HBA'\n%s\nHBA\nsystemctl reload postgresql"
                % (hba, '\n'.join(operator + base)))
        rc, out = lab.play(ROLE_PLAY, ['--diff'])
        assert rc == 0, out[-4000:]
        after = lab.ssh('primary', 'cat %s' % hba).stdout.splitlines()
        assert after[:len(operator + base)] == operator + base, after
        added = after[len(operator + base):]
        assert len([line for line in added if re.match(r'^hostssl\s+asterisk\s+asterisk\s+%s/32' % peer, line)]) == 1, added
    finally:
        lab.ssh('primary', "cat > %s <<'HBA'\n%sHBA\nsystemctl reload postgresql" % (hba, saved))
