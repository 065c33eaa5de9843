# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers for tests that run against the lab (`make lab-up`): read the inventory and its group_vars,
run commands on the hosts over SSH exactly as Ansible reaches them, run playbooks (from a file, from text, or
read through the ansible.posix.json callback), drive SIPp from the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re
import shlex
import subprocess
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


def ansible_env(**extra):
    """Environment for the ansible commands tests run: the repo's ansible.cfg, the venv, plain output
    (molecule's verifier exports ANSIBLE_FORCE_COLOR, which would put escapes in the recap)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''))
    env.update(extra)
    return env


def inventory_path():
    """The lab inventory: $LAB_INVENTORY, else .lab/inventory.yml."""
    return os.path.abspath(os.environ.get('LAB_INVENTORY') or os.path.join(ROOT, '.lab', 'inventory.yml'))


# setup.yml's plays for the roles the setup tests converge: (play name, hosts, any_errors_fatal).
SETUP_PLAYS = {
    'preflight': ('Preflight', 'proxy:primary:secondary', True),
    'ssh_trust': ('SSH trust', 'proxy:primary:secondary', False),
    'ha': ('HA', 'primary:secondary', False),
}


# The preflight role's topology check alone: sets wazo_mm_topology, which every other role reads. Put it
# before a play that runs a role on its own.
TOPOLOGY_PLAY = """
- name: Topology
  hosts: proxy:primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.preflight
      vars:
        wazo_mm_preflight_checks: [topology]
"""


def setup_playbook(*roles):
    """Playbook text running these roles (keys of SETUP_PLAYS) in the given order, one play each, as setup.yml
    runs them: no fact gathering, preflight fatal for every host."""
    text = '\n'
    for role in roles:
        name, hosts, fatal = SETUP_PLAYS[role]
        text += '- name: %s\n  hosts: %s\n  gather_facts: false\n' % (name, hosts)
        if fatal:
            text += '  any_errors_fatal: true\n'
        text += '  roles:\n    - role: wazo.maintenance_mode.%s\n' % role
    return text


class Lab(object):
    """One lab: host addresses per group, its group_vars and hostvars, SSH, ansible-playbook."""

    def __init__(self, path=None):
        self.path = path or inventory_path()
        self._group_vars = self._hostvars = None
        with open(self.path) as handle:
            inv = yaml.safe_load(handle)
        self.vars = inv['all'].get('vars', {})
        self.hosts = {}
        for group, body in inv['all']['children'].items():
            for _name, hostvars in (body.get('hosts') or {}).items():
                if hostvars and 'ansible_host' in hostvars:
                    self.hosts[group] = hostvars['ansible_host']
        self.ssh_base = (['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
                          '-i', self.vars['ansible_ssh_private_key_file']]
                         + shlex.split(self.vars.get('ansible_ssh_common_args', ''))
                         + ['-l', self.vars.get('ansible_user', 'root')])

    @property
    def group_vars(self):
        """The lab's settings: group_vars/all/*.yml beside the inventory, merged in file name order."""
        if self._group_vars is None:
            self._group_vars = {}
            directory = os.path.join(os.path.dirname(os.path.abspath(self.path)), 'group_vars', 'all')
            if os.path.isdir(directory):
                for name in sorted(os.listdir(directory)):
                    if name.endswith('.yml'):
                        with open(os.path.join(directory, name)) as handle:
                            self._group_vars.update(yaml.safe_load(handle) or {})
        return self._group_vars

    @property
    def hostvars(self):
        """{host: variables} as Ansible sees them (`ansible-inventory --list`: inventory and group_vars)."""
        if self._hostvars is None:
            out = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', str(self.path), '--list'],
                                 cwd=ROOT, capture_output=True, text=True, check=True,
                                 env=ansible_env()).stdout
            self._hostvars = json.loads(out)['_meta']['hostvars']
        return self._hostvars

    def address(self, host):
        """The address the other hosts use to reach `host`: wazo_mm_address, else ansible_host."""
        return self.hostvars[host].get('wazo_mm_address') or self.hostvars[host]['ansible_host']

    def ssh(self, group, cmd, check=True, timeout=300):
        """Run a shell command on the host of `group`; returns the CompletedProcess."""
        proc = subprocess.run(self.ssh_base + [self.hosts[group], cmd], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('%s: %s -> rc %d\n%s\n%s' % (group, cmd, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def playbook(self, playbook, *args, inventory=None, check=True, timeout=1800, env=None):
        """Run ansible-playbook from the repo root; returns the CompletedProcess."""
        cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory or self.path, playbook] + list(args)
        full_env = ansible_env(**(env or {}))
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError('%s failed (rc %d)\n%s\n%s'
                                 % (' '.join(cmd), proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
        return proc

    def play(self, text, extra_args=(), background=False):
        """ansible-playbook on a playbook given as text (written to a temporary file), without colours.
        Returns (rc, stdout + stderr), or with background=True the running Popen (stderr into stdout)."""
        fd, path = tempfile.mkstemp(prefix='wazo-mm-test-', suffix='.yml')
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', self.path, path] + list(extra_args)
        env = ansible_env()
        if background:
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def channels(self, group):
        """`asterisk -rx 'core show channels count'` on a stack, parsed."""
        out = self.ssh(group, "asterisk -rx 'core show channels count'").stdout
        counts = {}
        for line in out.splitlines():
            words = line.split()
            if 'active channel' in line:
                counts['channels'] = int(words[0])
            elif 'active call' in line:
                counts['calls'] = int(words[0])
            elif 'processed' in line:
                counts['processed'] = int(words[0])
        return counts

    def route_mode(self):
        """The proxy's route mode as wazo-mode prints it (JSON)."""
        return json.loads(self.ssh('proxy', 'wazo-mode status --json').stdout)


def recap(stdout):
    """{host: {'ok': n, 'changed': n, 'failed': n, ...}} from an ansible-playbook PLAY RECAP (its `host : ok=...`
    lines; anything else in the output, stderr included, is ignored)."""
    out = {}
    stdout = re.sub(r'\x1b\[[0-9;]*m', '', stdout)
    for match in re.finditer(r'^(\S+)\s+:\s+(ok=.*)$', stdout, re.M):
        out[match.group(1)] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', match.group(2))}
    return out


class JsonRun(object):
    """One ansible-playbook run, read through the ansible.posix.json callback."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        try:
            self.data = json.loads(proc.stdout[proc.stdout.index('{'):])
        except ValueError:
            raise AssertionError('no JSON from ansible-playbook:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-3000:]))

    @property
    def changed(self):
        return sum(s.get('changed', 0) for s in self.data.get('stats', {}).values())

    def results(self):
        """(play name, task name, host, result) of every task result, in order."""
        for play in self.data.get('plays', []):
            for task in play.get('tasks', []):
                for host, res in task.get('hosts', {}).items():
                    yield play['play']['name'], task['task']['name'], host, res

    @property
    def failures(self):
        """The messages of the failed or unreachable results (and of their failed loop items), joined."""
        msgs = []
        for _play, _task, host, res in self.results():
            if res.get('failed') or res.get('unreachable'):
                msgs.append('%s: %s' % (host, res.get('msg', '')))
                msgs += ['%s: %s' % (host, item.get('msg', '')) for item in res.get('results', [])
                         if isinstance(item, dict) and item.get('failed')]
        return ' | '.join(msgs)

    @property
    def plays_with_tasks(self):
        return [p['play']['name'] for p in self.data.get('plays', []) if p.get('tasks')]

    def __repr__(self):
        return 'rc=%s changed=%s failures=%s stderr=%s' % (self.rc, self.changed, self.failures, self.stderr[-2000:])


def run_playbook(tmp_path, inventories, playbook, args=()):
    """ansible-playbook on the playbook text (written in tmp_path) with these inventories (layered in order),
    read through the ansible.posix.json callback; needs no lab unless the play reaches a host."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / 'playbook.yml'
    path.write_text(playbook)
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook')]
    for inv in inventories:
        cmd += ['-i', str(inv)]
    cmd += [str(path)] + list(args)
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_RETRY_FILES_ENABLED='0')
    return JsonRun(subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False))


def sipp_call(target, local_ip, duration_ms=1000, calls=1, rate=1, service='1000', timeout=60, port=5071):
    """Place `calls` calls through `target` with the route-following UAC; returns (ok, failed, output)."""
    scenario = os.path.join(ROOT, 'tests', 'standin', 'sipp', 'uac_rr.xml')
    cmd = ['sipp', '-sf', scenario, '%s:5060' % target, '-i', local_ip, '-p', str(port), '-s', service,
           '-d', str(duration_ms), '-r', str(rate), '-m', str(calls), '-timeout', '%ds' % timeout,
           '-timeout_error', '-nostdin', '-nd', '-trace_screen', '-screen_file', '/dev/stdout']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    ok, failed = sipp_call_counts(proc.stdout)
    return ok, failed, proc.stdout + proc.stderr


def sipp_call_counts(screen):
    """(successful, failed) calls from SIPp's final screen (`-trace_screen`), None where a line is missing."""
    ok = failed = None
    for line in screen.splitlines():
        cells = [c.strip() for c in line.split('|')]
        if cells[0] == 'Successful call' and len(cells) >= 3:
            ok = int(cells[2])
        elif cells[0] == 'Failed call' and len(cells) >= 3:
            failed = int(cells[2])
    return ok, failed


def host_ip_towards(target):
    """The host's source address on the route to target (the lab bridge)."""
    out = subprocess.run(['ip', '-o', 'route', 'get', target], capture_output=True, text=True, check=True).stdout
    words = out.split()
    return words[words.index('src') + 1] if 'src' in words else '127.0.0.1'


# --- the real Asterisk 22 of the stacks: CLI, hints, PJSIP history, calls with audio -----------------------------

def asterisk_rx(lab, group, command, check=True, timeout=60):
    """`asterisk -rx COMMAND` on a stack; returns its stdout. Asterisk exits 0 whatever the command did (and 1
    only when it cannot connect): read the output."""
    return lab.ssh(group, 'asterisk -rx %s' % shlex.quote(command), check=check, timeout=timeout).stdout


HINT_LINE = re.compile(r'^\s*(\S+)@(\S+)\s*: (\S+)\s+State:(\S+)', re.M)


def hint_states(lab, group, context='default'):
    """{exten: state} of the hints of `context` in `core show hints` ('Idle', 'InUse', 'Unavailable', ...)."""
    out = asterisk_rx(lab, group, 'core show hints')
    return {m.group(1): m.group(4) for m in HINT_LINE.finditer(out) if m.group(2) == context}


def wait_for(predicate, timeout, interval=0.5):
    """Call ``predicate`` until it returns something true (returned) or ``timeout`` seconds pass (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def ha_state(lab, state_dir='/var/lib/wazo-maintenance'):
    """The HA check's state file on the proxy (ha-check.json) as a dict; {} when it cannot be read."""
    out = lab.ssh('proxy', 'cat %s/ha-check.json' % state_dir, check=False).stdout
    try:
        return json.loads(out)
    except ValueError:
        return {}


def wait_hint(lab, group, exten, want, timeout, interval=0.5, context='default'):
    """Poll `core show hints` on a stack until the hint exten@context is in state `want`, at most `timeout`
    seconds. Returns (last state seen or None when the hint does not exist, seconds waited)."""
    start = time.monotonic()
    while True:
        state = hint_states(lab, group, context).get(exten)
        waited = time.monotonic() - start
        if state == want or waited >= timeout:
            return state, waited
        time.sleep(interval)


def sample_hints(lab, groups, exten, seconds, interval=1.0, context='default'):
    """The state of the hint exten@context on each of `groups` every `interval` seconds for `seconds` seconds:
    [(seconds since the start, {group: state})]."""
    samples, start = [], time.monotonic()
    for tick in range(int(seconds / interval) + 1):
        delay = start + tick * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        samples.append((round(time.monotonic() - start, 1),
                        {g: hint_states(lab, g, context).get(exten) for g in groups}))
    return samples


HISTORY_LINE = re.compile(r'^(\d+)\s+\d+\s+\*?\s*(<==|==>)\s+(\S+)\s+(.*?)\s*$', re.M)


def pjsip_history_start(lab, group):
    """Turn PJSIP's SIP message history on, emptied (`pjsip set history on|clear`)."""
    asterisk_rx(lab, group, 'pjsip set history on')
    asterisk_rx(lab, group, 'pjsip set history clear')


def pjsip_history_stop(lab, group):
    """Turn the history off and empty it (it costs memory while on)."""
    asterisk_rx(lab, group, 'pjsip set history off', check=False)
    asterisk_rx(lab, group, 'pjsip set history clear', check=False)


def pjsip_publishes(lab, group, peer_ip):
    """What PJSIP's history on `group` recorded with the peer at `peer_ip` since it was started:
    {'requests': [{'uri', 'event', 'body'} of each PUBLISH received from the peer, in order],
     'responses': [status code of each response sent to the peer, in order]}."""
    listing = asterisk_rx(lab, group, 'pjsip show history')
    numbers, responses = [], []
    for num, direction, address, first in HISTORY_LINE.findall(listing):
        if address.split(':')[0] != peer_ip:
            continue
        if direction == '<==' and first.startswith('PUBLISH '):
            numbers.append(int(num))
        elif direction == '==>' and first.startswith('SIP/2.0 '):
            responses.append(int(first.split()[1]))
    requests = []
    if numbers:
        script = '; '.join("asterisk -rx 'pjsip show history entry %d'" % n for n in numbers)
        text = lab.ssh(group, script).stdout
        for entry in re.split(r'^<--- History Entry \d+ .*$', text, flags=re.M)[1:]:
            uri = re.search(r'^PUBLISH (\S+) SIP/2.0', entry, re.M)
            event = re.search(r'^Event:\s*(\S+)', entry, re.M | re.I)
            body = re.search(r'^(\{.*\})\s*$', entry, re.M)
            requests.append({'uri': uri.group(1) if uri else None, 'event': event.group(1) if event else None,
                             'body': json.loads(body.group(1)) if body else None})
    return {'requests': requests, 'responses': responses}


def _ulaw(sample):
    """One 16-bit linear sample as G.711 mu-law (the standard encoder)."""
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not sample & mask:
        exponent, mask = exponent - 1, mask >> 1
    return ~(sign | (exponent << 4) | ((sample >> (exponent + 3)) & 0x0F)) & 0xFF


def sipp_call_with_audio(target, local_ip, directory, service, duration_ms=4000, timeout=60, port=5072,
                         media_port=6072):
    """One call through `target` with the route-following UAC (uac_rr.xml) that also sends RTP for the whole
    call: a 440 Hz tone, G.711 mu-law (payload type 0, what the scenario's SDP offers), from `media_port`, so
    the far end has something to record (the plain UAC sends no media: Asterisk's VoiceMail() gives up on a
    silent channel). The scenario and the audio are written to `directory`. Returns (ok, failed, output)."""
    directory = str(directory)
    audio = os.path.join(directory, 'tone-440hz-ulaw.raw')
    with open(audio, 'wb') as handle:
        handle.write(bytes(_ulaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000)))
    with open(os.path.join(ROOT, 'tests', 'standin', 'sipp', 'uac_rr.xml')) as handle:
        scenario = handle.read()
    hold = '\n  <pause/>\n'
    assert scenario.count(hold) == 1, 'uac_rr.xml: one bare <pause/> (the call duration) expected'
    scenario = scenario.replace(hold, '\n  <nop><action><exec rtp_stream="%s,-1,0"/></action></nop>\n  <pause/>\n'
                                      '  <nop><action><exec rtp_stream="pause"/></action></nop>\n' % audio)
    path = os.path.join(directory, 'uac_rr_audio.xml')
    with open(path, 'w') as handle:
        handle.write(scenario)
    cmd = ['sipp', '-sf', path, '%s:5060' % target, '-i', local_ip, '-p', str(port), '-mp', str(media_port),
           '-s', service, '-d', str(duration_ms), '-r', '1', '-m', '1', '-timeout', '%ds' % timeout,
           '-timeout_error', '-nostdin', '-nd', '-trace_screen', '-screen_file', '/dev/stdout']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    ok, failed = sipp_call_counts(proc.stdout)
    return ok, failed, proc.stdout + proc.stderr


# --- reachability from the controller (the lab bridge's host address) ------------------------------------------

def tcp_connects(address, port, timeout=3.0):
    """True when a TCP connection to address:port opens within `timeout` seconds (refused, rejected by a
    firewall or no answer: False)."""
    import socket  # pylint: disable=import-outside-toplevel
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def rpcbind_answers(address, timeout=3.0, port=111):
    """True when the portmapper at address answers an RPC NULL call over UDP within `timeout` seconds."""
    import socket  # pylint: disable=import-outside-toplevel
    import struct  # pylint: disable=import-outside-toplevel
    xid = int(time.time() * 1000) & 0xFFFFFFFF
    # ONC RPC call: xid, CALL, rpcvers 2, program 100000 (portmapper) version 2, procedure 0 (NULL),
    # AUTH_NONE credentials and verifier
    call = struct.pack('>10I', xid, 0, 2, 100000, 2, 0, 0, 0, 0, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(call, (address, port))
            reply = sock.recv(512)
        except OSError:
            return False
    return len(reply) >= 8 and struct.unpack('>2I', reply[:8]) == (xid, 1)
