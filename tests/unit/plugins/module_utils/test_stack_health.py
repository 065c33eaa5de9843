# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate's reading of wazo-service status, iptables -S and nft list ruleset."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import stack_health as sh

RUNNING = 'Checking services...\n\trunning\t\twazo-calld\n\trunning\t\twazo-chatd\n\tstopped\t\twazo-provd\n'
CHATD_DOWN = 'Checking services...\n\trunning\t\twazo-calld\n\tstopped\t\twazo-chatd\n\tstopped\t\twazo-provd\n'
IPT_CLEAN = '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n'
IPT_WAZO_DROP = IPT_CLEAN + '-A INPUT -p udp -m udp --dport 5060 -j DROP\n'
NFT_IPT_TABLE = '''table ip filter {
\tchain INPUT {
\t\ttype filter hook input priority filter; policy accept;
\t\tmeta l4proto udp udp dport 5060 counter packets 0 bytes 0 drop
\t}
}
'''


def out(services=RUNNING, srv_rc=1, ipt=IPT_CLEAN, ipt_rc=0, nft='', nft_rc=127):
    m = sh.MARK
    return '%s\n%s services rc=%d\n%s\n%s iptables rc=%d\n%s\n%s nft rc=%d\n' % (
        services, m, srv_rc, ipt, m, ipt_rc, nft, m, nft_rc)


@pytest.mark.parametrize('rules, blocked', [
    ('-A INPUT -p udp -m udp --dport 5060 -j DROP', True),
    ('-A INPUT -p udp --dport 5060 -j REJECT --reject-with icmp-port-unreachable', True),
    ('-A INPUT -p udp -m multiport --dports 5060:5061,5070 -j DROP', True),
    ('-A f2b-sip -p udp -m udp --dport 5060 -j DROP', True),  # a user chain (jumped from INPUT)
    ('-A INPUT -s 203.0.113.7/32 -p udp -m udp --dport 5060 -j DROP', False),  # a ban of one source
    ('-A INPUT -s 0.0.0.0/0 -p udp -m udp --dport 5060 -j DROP', True),
    ('-A INPUT -p tcp -m tcp --dport 5060 -j DROP', False),
    ('-A INPUT -p udp -m udp --dport 5061 -j DROP', False),
    ('-A INPUT -p udp -m udp --dport 5060 -j ACCEPT', False),
    ('-A OUTPUT -p udp -m udp --dport 5060 -j DROP', False),
    ('-A INPUT -p udp -m udp ! --dport 5060 -j DROP', False),
])
def test_iptables_rules(rules, blocked):
    assert bool(sh.iptables_sip_blocks(IPT_CLEAN + rules + '\n')) is blocked


@pytest.mark.parametrize('rule, hook, blocked', [
    ('udp dport 5060 drop', 'input', True),
    ('udp dport { 5060, 5061 } counter reject', 'input', True),
    ('meta l4proto udp th dport 5000-6000 drop', 'input', True),
    ('ip saddr 203.0.113.7 udp dport 5060 drop', 'input', False),
    ('udp dport 5060 accept', 'input', False),
    ('udp dport 5060 drop', 'output', False),
    ('tcp dport 5060 drop', 'input', False),
])
def test_nft_rules(rule, hook, blocked):
    text = 'table inet fw {\n\tchain in {\n\t\ttype filter hook %s priority 0; policy accept;\n\t\t%s\n\t}\n}\n' % (hook, rule)
    assert bool(sh.nft_sip_blocks(text)) is blocked


def test_nft_leaves_iptables_nft_tables_to_iptables():
    assert sh.nft_sip_blocks(NFT_IPT_TABLE) == []
    assert sh.nft_sip_blocks(NFT_IPT_TABLE, skip_iptables_tables=False)


def test_healthy_with_a_service_stopped_on_purpose():
    problems, details = sh.evaluate(sh.split_sections(out()), (200, 'OK'), ['wazo-provd'])
    assert problems == [] and details['services_status'] == 'running'


def test_a_stopped_service_is_named():
    problems, details = sh.evaluate(sh.split_sections(out(services=CHATD_DOWN)), (200, 'OK'), ['wazo-provd'])
    assert problems == ['wazo-service status: stopped (rc=1), wazo-chatd stopped']
    assert details['services_down'] == {'wazo-chatd': 'stopped'}
    assert 'wazo-service start' in sh.advice(problems)


def test_the_wazo_drop_and_no_sip_answer():
    problems, details = sh.evaluate(sh.split_sections(out(ipt=IPT_WAZO_DROP)), (None, 'timeout'), ['wazo-provd'])
    assert problems[0] == 'no answer to SIP OPTIONS (timeout)'
    assert 'udp/5060 dropped or rejected by the firewall: -A INPUT -p udp -m udp --dport 5060 -j DROP' in problems
    assert details['firewall_rules'] and 'iptables -D' in sh.advice(problems)


def test_nft_only_stack_and_unreadable_firewall():
    nft = 'table inet filter {\n chain input {\n  type filter hook input priority 0;\n  udp dport 5060 drop\n }\n}'
    problems, _details = sh.evaluate(sh.split_sections(out(ipt='', ipt_rc=127, nft=nft, nft_rc=0)), (200, 'OK'),
                                     ['wazo-provd'])
    assert problems == ['udp/5060 dropped or rejected by the firewall: inet filter input: udp dport 5060 drop']
    problems, _details = sh.evaluate(sh.split_sections(out(ipt='denied', ipt_rc=4)), (200, 'OK'), ['wazo-provd'])
    assert problems and 'firewall cannot be read' in problems[0]


def test_no_wazo_service_and_a_sip_error():
    problems, _details = sh.evaluate(sh.split_sections(out(services='sh: wazo-service: not found', srv_rc=127)),
                                     (503, 'Service Unavailable'))
    assert problems == ['SIP OPTIONS answered 503 Service Unavailable', 'wazo-service not found']


def test_ssh_failure_gives_only_the_sip_part():
    problems, _details = sh.evaluate(None, (200, 'OK'))
    assert problems == []
