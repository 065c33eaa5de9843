# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the firewalld path: the lab's proxy runs Debian's firewalld (lab/lab.sh enables it there;
its default zone as shipped lets in only ssh and dhcpv6-client), and setup.yml opens exactly what the design
needs: SIP for everyone (the default wazo_mm_kamailio_firewalld_sources), nfs, rpc-bind and mountd for the two
stacks only, permanent and live, idempotent.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_firewalld.py

The third address is the host's own address on the lab bridge (the controller, not a stack): it places a call
through the proxy and tries the NFS ports. The tests run in file order and leave firewalld running with the
rules setup.yml gives (an operator's rule planted by a test is removed at its end, firewalld stopped by a test
is started again whatever happened), so later proofs in the same lab run behind it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py
from conftest import MOLECULE_RAN_SETUP_TWICE

# The firewalld services the voicemail role allows and their ports as Debian's firewalld defines them.
NFS_SERVICES = ('nfs', 'rpc-bind', 'mountd')
NFS_TCP_PORTS = (2049, 111, 20048)
OPERATOR_RULE = 'rule family="ipv4" source address="192.0.2.7" service name="http" accept'
OPERATOR_ZONE = 'wmm-test-ops'
OPERATOR_ZONE_SOURCE = '198.51.100.0/24'

pytestmark = pytest.mark.usefixtures('standin')

# setup.yml's two plays that touch firewalld, as setup.yml runs them (after the topology).
ROLES_PLAY = labtools.TOPOLOGY_PLAY + '''
- name: Kamailio proxy
  hosts: proxy
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.kamailio_proxy
- name: Voicemail on NFS
  hosts: nfs_server:primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.voicemail_nfs
'''


@pytest.fixture(scope='module')
def fw(standin):
    """The lab, when its proxy runs firewalld and setup.yml has configured the proxy (else skipped)."""
    lab = standin
    if lab.ssh('proxy', 'firewall-cmd --state', check=False).stdout.strip() != 'running':
        if lab.ssh('proxy', 'systemctl is-enabled firewalld', check=False).stdout.strip() != 'enabled':
            pytest.skip('the lab proxy does not run firewalld (lab created with LAB_FIREWALLD=0)')
    if lab.ssh('proxy', 'test -x /usr/local/sbin/wazo-mode', check=False).returncode != 0:
        pytest.skip('setup.yml has not configured the proxy yet')
    return lab


def cmd(lab, args, group='proxy', check=True):
    return lab.ssh(group, 'firewall-cmd ' + args, check=check).stdout.strip()


def zone_config(lab, permanent):
    """{'ports': set, 'rich': set, 'services': set} of the default zone, runtime or permanent."""
    flag = '--permanent ' if permanent else ''
    zone = cmd(lab, '--get-default-zone')
    return {
        'ports': set(cmd(lab, '%s--zone=%s --list-ports' % (flag, zone)).split()),
        'services': set(cmd(lab, '%s--zone=%s --list-services' % (flag, zone)).split()),
        'rich': set(line.strip() for line in cmd(lab, '%s--zone=%s --list-rich-rules' % (flag, zone)).splitlines()
                    if line.strip()),
    }


def expected_nfs_rules(lab):
    return set('rule family="ipv4" source address="%s" service name="%s" accept' % (lab.address(stack), service)
               for stack in ('primary', 'secondary') for service in NFS_SERVICES)


def etc_firewalld(lab):
    """sha256 of every file under /etc/firewalld (the permanent configuration), sorted."""
    return lab.ssh('proxy', 'cd /etc/firewalld && find . -type f -print0 | sort -z | xargs -0 -r sha256sum').stdout


def run_roles(lab, args=()):
    """The two plays; returns (output with its whitespace runs made single spaces, recap): messages are
    wrapped by the callback."""
    rc, out = lab.play(ROLES_PLAY, list(args))
    assert rc == 0, out[-4000:]
    return ' '.join(out.split()), labtools.recap(out)


def test_firewalld_runs_on_the_proxy_only(fw):
    assert cmd(fw, '--state') == 'running'
    assert cmd(fw, '--get-default-zone') == 'public'
    for stack in ('primary', 'secondary'):
        assert fw.ssh(stack, 'systemctl is-active firewalld', check=False).stdout.strip() != 'active'


def test_setup_opens_sip_and_nfs_for_the_stacks_only(fw):
    # as the converged setup left them (the fixture requires it)
    port = '%d/udp' % int(fw.group_vars.get('wazo_mm_kamailio_port', 5060))
    for permanent in (False, True):
        conf = zone_config(fw, permanent)
        where = 'permanent' if permanent else 'runtime'
        assert port in conf['ports'], (where, conf)
        assert expected_nfs_rules(fw) <= conf['rich'], (where, conf)
        # never opened to the world
        assert not set(NFS_SERVICES) & conf['services'], (where, conf)
        assert not {'2049/tcp', '111/tcp', '111/udp', '20048/tcp', '20048/udp'} & conf['ports'], (where, conf)


def test_mountd_listens_where_firewalld_opens_it(fw):
    # NFSv3 clients find mountd through rpcbind: it must be the port firewalld's mountd service opens (20048),
    # not a random one, or the stacks could not mount through the firewall.
    out = fw.ssh('proxy', 'rpcinfo -p').stdout
    mountd = {int(line.split()[3]) for line in out.splitlines() if line.split()[-1:] == ['mountd']}
    assert mountd == {20048}, out
    service = cmd(fw, '--info-service=mountd')
    assert '20048/tcp' in service and '20048/udp' in service, service


def test_stacks_reach_the_nfs_ports(fw):
    proxy = fw.hosts['proxy']
    for stack in ('primary', 'secondary'):
        for port in NFS_TCP_PORTS:
            p = fw.ssh(stack, 'timeout 5 bash -c %s' % shlex.quote('exec 3<>/dev/tcp/%s/%d' % (proxy, port)),
                       check=False)
            assert p.returncode == 0, (stack, port, p.stderr)
        # rpcbind over UDP, and mountd found through it (what an NFSv3 mount does)
        p = fw.ssh(stack, 'timeout 10 rpcinfo -u %s portmapper && timeout 10 rpcinfo -t %s mountd 3' % (proxy, proxy),
                   check=False)
        assert p.returncode == 0, (stack, p.stdout, p.stderr)


def test_a_third_address_reaches_sip_but_not_nfs(fw):
    proxy = fw.hosts['proxy']
    third = labtools.host_ip_towards(proxy)
    assert third not in (fw.hosts['primary'], fw.hosts['secondary'], proxy)
    # the probe itself works from there: ssh (open in the zone as shipped) connects
    assert labtools.tcp_connects(proxy, 22, timeout=3)
    for port in NFS_TCP_PORTS:
        assert not labtools.tcp_connects(proxy, port, timeout=3), (third, port)
    # rpc-bind over UDP: no answer to a portmapper NULL call from the third address (the stacks get one)
    assert not labtools.rpcbind_answers(proxy, timeout=3), third
    # SIP: a whole call through the proxy from that address
    wazo_mode = fw.ssh('proxy', 'wazo-mode normal --no-wait --force', check=False)
    assert wazo_mode.returncode == 0, wazo_mode.stderr
    ok, failed, output = labtools.sipp_call(proxy, third, duration_ms=1000, timeout=30)
    assert (ok, failed) == (1, 0), output[-3000:]


@MOLECULE_RAN_SETUP_TWICE
def test_second_setup_run_changes_nothing(fw):
    proc = fw.playbook('playbooks/setup.yml', check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    recap = labtools.recap(out)
    assert recap and all(v['changed'] == 0 for v in recap.values()), (recap, out[-6000:])
    proc = fw.playbook('playbooks/setup.yml', '--check', '--diff', check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    recap = labtools.recap(out)
    assert recap and all(v['changed'] == 0 for v in recap.values()), (recap, out[-6000:])


def test_stopped_firewalld_is_left_alone_and_reported(fw):
    zone = cmd(fw, '--get-default-zone')
    port = '%d/udp' % int(fw.group_vars.get('wazo_mm_kamailio_port', 5060))
    try:
        # take one of setup's rules away, then stop firewalld: a run must neither add it back nor touch anything
        cmd(fw, '--permanent --zone=%s --remove-port=%s' % (zone, port))
        fw.ssh('proxy', 'systemctl stop firewalld')
        before = etc_firewalld(fw)
        out, recap = run_roles(fw)
        assert all(v['changed'] == 0 for v in recap.values()), recap
        assert 'firewalld is installed on proxy but not running: left alone' in out, out[-4000:]
        assert 'allows SIP (udp/%s) from anywhere' % port.split('/')[0] in out, out[-4000:]
        assert 'mountd from %s and %s only' % (fw.address('primary'), fw.address('secondary')) in out, out[-4000:]
        assert etc_firewalld(fw) == before
        assert fw.ssh('proxy', 'systemctl is-active firewalld', check=False).stdout.strip() == 'inactive'
        offline = fw.ssh('proxy', 'firewall-offline-cmd --zone=%s --list-ports' % zone).stdout.split()
        assert port not in offline, offline
    finally:
        fw.ssh('proxy', 'systemctl start firewalld', check=False)
    assert cmd(fw, '--state') == 'running'
    # running again: the next run puts the rule back, permanent and live, and a run after it changes nothing
    _out, recap = run_roles(fw)
    assert recap['proxy']['changed'] == 1, recap
    assert port in cmd(fw, '--zone=%s --list-ports' % zone)
    assert port in cmd(fw, '--permanent --zone=%s --list-ports' % zone)
    # the run after it changes nothing: test_operator_rules_and_zones_survive, next, runs the roles again


def test_operator_rules_and_zones_survive(fw):
    zone = cmd(fw, '--get-default-zone')
    try:
        cmd(fw, '--permanent --new-zone=%s' % OPERATOR_ZONE)
        cmd(fw, '--permanent --zone=%s --add-source=%s' % (OPERATOR_ZONE, OPERATOR_ZONE_SOURCE))
        cmd(fw, '--permanent --zone=%s --add-service=https' % OPERATOR_ZONE)
        cmd(fw, '--reload')
        cmd(fw, '--permanent --zone=%s --add-rich-rule=%s' % (zone, shlex.quote(OPERATOR_RULE)))
        cmd(fw, '--zone=%s --add-rich-rule=%s' % (zone, shlex.quote(OPERATOR_RULE)))
        cmd(fw, '--permanent --zone=%s --add-icmp-block=timestamp-request' % zone)
        cmd(fw, '--zone=%s --add-icmp-block=timestamp-request' % zone)
        # mountd open to every host (as an older run of the role left it): kept, and said
        cmd(fw, '--permanent --zone=%s --add-service=mountd' % zone)
        cmd(fw, '--zone=%s --add-service=mountd' % zone)
        before = etc_firewalld(fw)
        out, recap = run_roles(fw)
        assert all(v['changed'] == 0 for v in recap.values()), recap
        assert 'lets every host reach mountd (zone default)' in out, out[-4000:]
        assert etc_firewalld(fw) == before
        assert cmd(fw, '--get-default-zone') == zone
        for flag in ('', '--permanent '):
            assert OPERATOR_RULE in cmd(fw, '%s--zone=%s --list-rich-rules' % (flag, zone)), flag
            assert 'timestamp-request' in cmd(fw, '%s--zone=%s --list-icmp-blocks' % (flag, zone)), flag
            assert OPERATOR_ZONE_SOURCE in cmd(fw, '%s--zone=%s --list-sources' % (flag, OPERATOR_ZONE)), flag
            assert 'https' in cmd(fw, '%s--zone=%s --list-services' % (flag, OPERATOR_ZONE)), flag
            assert 'mountd' in cmd(fw, '%s--zone=%s --list-services' % (flag, zone)).split(), flag
        active = cmd(fw, '--get-active-zones')
        assert OPERATOR_ZONE in active, active
    finally:
        for flag in ('', '--permanent '):
            cmd(fw, '%s--zone=%s --remove-rich-rule=%s' % (flag, zone, shlex.quote(OPERATOR_RULE)), check=False)
            cmd(fw, '%s--zone=%s --remove-icmp-block=timestamp-request' % (flag, zone), check=False)
            cmd(fw, '%s--zone=%s --remove-service=mountd' % (flag, zone), check=False)
        cmd(fw, '--permanent --delete-zone=%s' % OPERATOR_ZONE, check=False)
        cmd(fw, '--reload', check=False)
