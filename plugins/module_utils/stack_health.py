# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate every switch passes before traffic goes to a stack.

A stack is healthy when, all at once:

- it answers SIP OPTIONS from the proxy (``module_utils/sip_options.py``);
- ``wazo-service status`` on it reports every service running (exit code 0; stopped/failed services listed
  by its per-service lines, minus the ones stopped on purpose, e.g. wazo-provd on the secondary);
- its firewall has no rule that drops or rejects udp/5060 for everyone (``wazo-service stop`` inserts
  ``iptables -I INPUT 1 -p udp --dport 5060 -j DROP``; a failed start can leave it; phones register to both
  stacks directly, so a rule that lets only the proxy in still breaks them). Rules limited to some sources
  (``-s``/``saddr``: a ban list) do not count.

The stack's side is read with one command over SSH from the proxy (``module_utils/stack_ssh.py``):
:data:`REMOTE_COMMAND` prints the three outputs in marked sections; :func:`evaluate` turns them and the SIP
answer into a list of problems. Used by the ``stack_health`` module (upgrade.yml's switches).

Standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.wazo_upgrade import (
    not_running_services,
    services_status,
)

MARK = '@@wazo-mm-health@@'
# Sections: services (wazo-service status), iptables (-S, filter table), nft (list ruleset); each ends with
# "<MARK> <name> rc=<code>". An absent command gives rc=127.
REMOTE_COMMAND = (
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; LANG=C; export LANG; '
    'wazo-service status 2>&1; echo "%(m)s services rc=$?"; '
    'if command -v iptables >/dev/null; then iptables -w -S 2>&1; echo "%(m)s iptables rc=$?"; '
    'else echo "%(m)s iptables rc=127"; fi; '
    'if command -v nft >/dev/null; then nft list ruleset 2>&1; echo "%(m)s nft rc=$?"; '
    'else echo "%(m)s nft rc=127"; fi' % {'m': MARK}
)

_SECTION_END_RE = re.compile(r'^%s (?P<name>\w+) rc=(?P<rc>-?\d+)\s*$' % re.escape(MARK))
_BLOCKING_TARGETS = ('DROP', 'REJECT')
# Chains whose rules never see the packets a stack receives.
_NOT_INPUT_CHAINS = ('OUTPUT', 'FORWARD', 'POSTROUTING')
_ANY_SOURCE = ('0.0.0.0/0', '::/0')


def split_sections(text):
    """``{name: (rc, output)}`` of REMOTE_COMMAND's output."""
    sections = {}
    current = []
    for line in (text or '').splitlines():
        end = _SECTION_END_RE.match(line)
        if end:
            sections[end.group('name')] = (int(end.group('rc')), '\n'.join(current))
            current = []
        else:
            current.append(line)
    return sections


def _ports(value):
    ports = set()
    for part in value.split(','):
        if ':' in part:
            low, _sep, high = part.partition(':')
            try:
                ports.update(range(int(low or 0), int(high or 65535) + 1))
            except ValueError:
                continue
        elif part.isdigit():
            ports.add(int(part))
    return ports


def _iptables_rule_blocks_sip(tokens):
    opts = {}
    negated = set()
    for index, token in enumerate(tokens[:-1]):
        if token.startswith('-'):
            if index > 0 and tokens[index - 1] == '!':
                negated.add(token)
            else:
                opts.setdefault(token, tokens[index + 1])
    proto = opts.get('-p') or opts.get('--protocol')
    target = opts.get('-j') or opts.get('--jump')
    source = opts.get('-s') or opts.get('--source')
    ports = set()
    for name in ('--dport', '--destination-port', '--dports', '--destination-ports'):
        if name in opts and name not in negated:
            ports |= _ports(opts[name])
    if source and source not in _ANY_SOURCE:
        return False
    return proto in ('udp', '17') and 5060 in ports and target in _BLOCKING_TARGETS


def iptables_sip_blocks(text):
    """The rules of ``iptables -S`` that drop or reject udp/5060 from any source (INPUT and user chains)."""
    found = []
    for raw in (text or '').splitlines():
        tokens = raw.split()
        if len(tokens) < 3 or tokens[0] != '-A' or tokens[1] in _NOT_INPUT_CHAINS:
            continue
        if _iptables_rule_blocks_sip(tokens[2:]):
            found.append(raw.strip())
    return found


_NFT_DPORT_RE = re.compile(r'\b(?:udp|th) dport (?:\{(?P<set>[^}]*)\}|(?P<one>\d+(?:-\d+)?))')


def _nft_rule_blocks_sip(line):
    tokens = line.split()
    if not {'drop', 'reject'} & set(tokens):
        return False
    if ' saddr ' in ' %s ' % line:
        return False
    if 'th dport' in line and 'udp' not in line:
        return False
    for match in _NFT_DPORT_RE.finditer(line):
        spec = match.group('set') if match.group('set') is not None else match.group('one')
        if 5060 in _ports(spec.replace(' ', '').replace('-', ':')):
            return True
    return False


def nft_sip_blocks(text, skip_iptables_tables=True):
    """Rules of ``nft list ruleset`` that drop or reject udp/5060 from any source (not in output/forward hooks).

    With ``skip_iptables_tables``, the ``ip filter``/``ip6 filter`` tables are left out: iptables-nft writes
    there, and ``iptables -S`` already showed those rules.
    """
    found = []
    table = chain = None
    hook = None
    for raw in (text or '').splitlines():
        line = raw.strip()
        words = line.split()
        if line.startswith('table '):
            table = ' '.join(words[1:3])
            chain, hook = None, None
            continue
        if line.startswith('chain '):
            chain, hook = words[1], None
            continue
        hooked = re.search(r'\bhook (\w+)', line)
        if hooked and line.startswith('type '):
            hook = hooked.group(1)
            continue
        if chain is None or hook in ('output', 'forward', 'postrouting'):
            continue
        if skip_iptables_tables and table in ('ip filter', 'ip6 filter'):
            continue
        if _nft_rule_blocks_sip(line):
            found.append('%s %s: %s' % (table, chain, line))
    return found


def evaluate(sections, sip, ignore_services=()):
    """The problems of one sample (empty list: healthy).

    :param sections: :func:`split_sections` of REMOTE_COMMAND's output, or None when SSH failed.
    :param sip: ``(status_code or None, reason)`` of the SIP OPTIONS sent from the proxy.
    :param ignore_services: services stopped on purpose on this stack.
    :returns: ``(problems, details)``; ``details`` has ``sip``, ``services_status``, ``services_down``,
        ``firewall_rules``.
    """
    problems = []
    code, reason = sip
    details = {'sip': {'status_code': code, 'reason': reason}, 'services_status': None, 'services_down': {},
               'firewall_rules': []}
    if code is None:
        problems.append('no answer to SIP OPTIONS (%s)' % (reason or 'timeout'))
    elif code != 200:
        problems.append('SIP OPTIONS answered %s %s' % (code, reason))
    if sections is None:
        return problems, details
    rc, out = sections.get('services', (127, ''))
    if rc == 127:
        problems.append('wazo-service not found')
    else:
        status = services_status(rc)
        down = not_running_services(out, ignore_services)
        if status in ('stopped', 'failed') and down == {}:
            status = 'running'  # only services stopped on purpose are down
        details['services_status'] = status
        details['services_down'] = down or {}
        if status != 'running':
            problems.append('wazo-service status: %s (rc=%s)%s' % (
                status, rc, ''.join(', %s %s' % (name, state) for name, state in sorted((down or {}).items()))))
    ipt_rc, ipt_out = sections.get('iptables', (127, ''))
    nft_rc, nft_out = sections.get('nft', (127, ''))
    rules = iptables_sip_blocks(ipt_out) if ipt_rc == 0 else []
    if nft_rc == 0:
        rules += nft_sip_blocks(nft_out, skip_iptables_tables=ipt_rc == 0)
    if ipt_rc != 0 and nft_rc != 0:
        problems.append('the firewall cannot be read (iptables rc=%s: %s; nft rc=%s)'
                        % (ipt_rc, ipt_out.strip()[-200:], nft_rc))
    details['firewall_rules'] = rules
    if rules:
        problems.append('udp/5060 dropped or rejected by the firewall: %s' % ' | '.join(rules))
    return problems, details


def advice(problems):
    """What the operator does about ``problems`` (one sentence per kind)."""
    text = []
    joined = ' '.join(problems)
    if 'wazo-service' in joined:
        text.append('start the services (wazo-service start; see wazo-service status and journalctl -u <service>)')
    if 'udp/5060' in joined:
        text.append('remove the rule (wazo-service start removes its own DROP; else iptables -D INPUT <rule> / '
                    'nft delete rule)')
    if 'SIP OPTIONS' in joined:
        text.append('make Asterisk answer SIP (systemctl status asterisk, asterisk -rx "pjsip show transports")')
    if 'cannot be read' in joined or 'ssh' in joined:
        text.append('make the stack reachable over SSH from the proxy (setup.yml, role ssh_trust)')
    return '; '.join(text)
