# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Kamailio on loopback, configured by the kamailio_proxy role, with SIPp stacks behind it.

Layout (all on 127.0.0.0/8, non-standard ports):
  proxy     127.0.0.10:15160  Kamailio, config rendered by the role's own tasks (tests/kamailio/render.yml)
  primary   127.0.0.11:15161  SIPp UAS (dispatcher set 1)
  secondary 127.0.0.12:15162  SIPp UAS (dispatcher set 2)
  phones    127.0.0.20        SIPp UAC/registrations
Kamailio runs as the `kamailio` user when the tests run as root, like the Debian service.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.kamailio_rpc import (
    KamailioRPC,
    KamailioUnavailable,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIPP_DIR = os.path.join(HERE, 'sipp')
KAMAILIO = shutil.which('kamailio') or '/usr/sbin/kamailio'
SIPP = shutil.which('sipp') or '/usr/bin/sipp'

PROXY = ('127.0.0.10', 15160)
PRIMARY = ('127.0.0.11', 15161)
SECONDARY = ('127.0.0.12', 15162)
PHONE_IP = '127.0.0.20'
DOMAINS = ['sip1.wazo.test', 'sip2.wazo.test']


def _need(binary):
    if not os.path.exists(binary):
        pytest.skip('%s is not installed (lab/host-setup.sh installs kamailio and sip-tester)' % binary)


def wait_until(predicate, timeout, interval=0.05, what='condition'):
    """Poll ``predicate`` until true; bounded in time (and hence in count)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1f s waiting for %s' % (timeout, what))
        time.sleep(interval)


class Env:
    """Paths and settings of one rendered proxy."""

    def __init__(self, base):
        self.base = base
        self.etc = os.path.join(base, 'etc')
        self.run = os.path.join(base, 'run')
        self.state = os.path.join(base, 'state')
        self.lib = os.path.join(base, 'lib')
        self.bin = os.path.join(base, 'bin')
        self.logs = os.path.join(base, 'logs')
        self.cfg = os.path.join(self.etc, 'kamailio.cfg')
        self.sock = os.path.join(self.run, 'kamailio_rpc.sock')
        self.fifo = os.path.join(self.run, 'kamailio_rpc.fifo')
        self.vars = {
            'wazo_mm_kamailio_address': PROXY[0],
            'wazo_mm_kamailio_port': PROXY[1],
            'wazo_mm_kamailio_mhomed': False,  # one loopback, many 127.0.0.x: the route's source is 127.0.0.1
            'wazo_mm_primary_address': PRIMARY[0],
            'wazo_mm_primary_sip_port': PRIMARY[1],
            'wazo_mm_secondary_address': SECONDARY[0],
            'wazo_mm_secondary_sip_port': SECONDARY[1],
            'wazo_mm_sip_domains': DOMAINS,
            'wazo_mm_kamailio_config_dir': self.etc,
            'wazo_mm_kamailio_run_dir': self.run,
            'wazo_mm_state_dir': self.state,
            'wazo_mm_tools_lib_dir': self.lib,
            'wazo_mm_tools_bin_dir': self.bin,
            'wazo_mm_tools_config': os.path.join(self.etc, 'proxy.conf'),
            'wazo_mm_kamailio_manage_service': False,
            'wazo_mm_kamailio_children': 4,
            # SIPp load comes from one address: keep anti-flood on but out of the way.
            'wazo_mm_kamailio_pike_reqs_density_per_unit': 100000,
        }

    def rpc(self, transport='dgram', timeout=3.0):
        return KamailioRPC(transport, self.sock if transport == 'dgram' else self.fifo, timeout=timeout)


def run_render(env, extra_args=()):
    """Run the role's configure/tools tasks against this env; return (rc, output)."""
    vars_file = os.path.join(env.base, 'vars.json')
    with open(vars_file, 'w') as f:
        json.dump(dict(env.vars, ansible_python_interpreter=sys.executable), f)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
           os.path.join(HERE, 'render.yml'), '-e', '@' + vars_file] + list(extra_args)
    envvars = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_STDOUT_CALLBACK='default', ANSIBLE_LOCALHOST_WARNING='false')
    proc = subprocess.run(cmd, cwd=ROOT, env=envvars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)
    return proc.returncode, proc.stdout


def recap(output):
    m = re.search(r'localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', output)
    assert m, output[-2000:]
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups())))


class Kamailio:
    def __init__(self, env):
        self.env = env
        self.proc = None
        self.log_path = os.path.join(env.logs, 'kamailio.log')

    def start(self, timeout=15):
        _need(KAMAILIO)
        assert self.proc is None or self.proc.poll() is not None
        os.makedirs(self.env.run, exist_ok=True)
        cmd = [KAMAILIO, '-f', self.env.cfg, '-DD', '-E', '-m', '64', '-M', '8',
               '-P', os.path.join(self.env.run, 'kamailio.pid')]
        if os.geteuid() == 0:
            shutil.chown(self.env.run, 'kamailio', 'kamailio')
            cmd += ['-u', 'kamailio', '-g', 'kamailio']
        log = open(self.log_path, 'a')
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        rpc = self.env.rpc(timeout=0.5)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError('kamailio exited with %s; log tail:\n%s' % (self.proc.returncode, self.tail()))
            return rpc.ping()
        wait_until(up, timeout, 0.1, 'Kamailio RPC')
        return self

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # Kamailio leaves its sockets behind when killed; a new start recreates them.
        for path in (self.env.sock, self.env.fifo):
            if os.path.exists(path):
                os.unlink(path)

    def restart(self):
        self.stop()
        return self.start()

    def tail(self, n=40):
        try:
            with open(self.log_path) as f:
                return ''.join(f.readlines()[-n:])
        except IOError:
            return ''


class SippStack:
    """A SIPp UAS standing in for one Wazo stack."""

    def __init__(self, env, name, addr):
        self.env, self.name, self.addr = env, name, addr
        self.log = os.path.join(env.logs, 'stack-%s.log' % name)
        self.proc = None

    def start(self):
        _need(SIPP)
        cmd = [SIPP, '-sf', os.path.join(SIPP_DIR, 'stack_uas.xml'), '-i', self.addr[0], '-p', str(self.addr[1]),
               '-key', 'stack', self.name, '-trace_logs', '-log_file', self.log, '-nostdin',
               '-max_recv_loops', '1000', '-aa']
        out = open(os.path.join(self.env.logs, 'stack-%s.out' % self.name), 'a')
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        time.sleep(0.2)
        assert self.proc.poll() is None, 'sipp UAS %s exited: %s' % (self.name, self.output())
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def output(self):
        try:
            with open(os.path.join(self.env.logs, 'stack-%s.out' % self.name)) as f:
                return f.read()[-2000:]
        except IOError:
            return ''

    def events(self, kind):
        """Call-IDs this stack logged for ``kind`` (INVITE, BYE, REQ200)."""
        try:
            with open(self.log) as f:
                lines = f.read().splitlines()
        except IOError:
            return []
        prefix = '%s %s ' % (self.name, kind)
        return [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]


class UacResult:
    def __init__(self, rc, log_text, output):
        self.rc = rc
        self.output = output
        self.answered = {}
        self.bye_ok = {}
        self.registered = {}
        for line in log_text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in ('ANSWERED', 'BYE-OK', 'REGISTERED'):
                {'ANSWERED': self.answered, 'BYE-OK': self.bye_ok,
                 'REGISTERED': self.registered}[parts[0]][parts[1]] = parts[2]
        m = re.search(r'Successful call\s*\|\s*\d+\s*\|\s*(\d+)', output)
        self.successful = int(m.group(1)) if m else None
        m = re.search(r'Failed call\s*\|\s*\d+\s*\|\s*(\d+)', output)
        self.failed = int(m.group(1)) if m else None

    def per_stack(self, which='answered'):
        counts = {}
        for stack in getattr(self, which).values():
            counts[stack] = counts.get(stack, 0) + 1
        return counts


_uac_seq = [0]


def sipp_uac(env, scenario='phone_uac.xml', calls=1, rate=10, duration_ms=0, domain=DOMAINS[0],
             background=False, timeout=60, recv_timeout_ms=15000):
    """Place ``calls`` calls from a phone through the proxy. Returns a UacResult (or a Popen + finisher)."""
    _need(SIPP)
    _uac_seq[0] += 1
    log = os.path.join(env.logs, 'uac-%d.log' % _uac_seq[0])
    cmd = [SIPP, '-sf', os.path.join(SIPP_DIR, scenario), '-i', PHONE_IP, '-p', str(16000 + _uac_seq[0]),
           '-m', str(calls), '-r', str(rate), '-l', str(max(calls, 1)), '-d', str(duration_ms),
           '-s', 'wazo', '-key', 'domain', domain, '-trace_logs', '-log_file', log,
           '-recv_timeout', str(recv_timeout_ms), '-timeout', '%ds' % timeout, '-timeout_error', '-nostdin', '-nd',
           '-trace_stat', '-stf', log + '.stat', '-max_recv_loops', '1000',
           '%s:%d' % PROXY]

    def finish(proc):
        out, _unused = proc.communicate(timeout=timeout + 30)
        try:
            with open(log) as f:
                text = f.read()
        except IOError:
            text = ''
        return UacResult(proc.returncode, text, out)

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            universal_newlines=True)
    if background:
        return proc, finish
    return finish(proc)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope='session')
def env():
    _need(KAMAILIO)
    base = tempfile.mkdtemp(prefix='wazo-mm-kamailio.', dir='/tmp')
    os.chmod(base, 0o755)  # Kamailio (its own user) reads etc/ and state/
    e = Env(base)
    os.makedirs(e.logs)
    rc, out = run_render(e)
    assert rc == 0, out[-4000:]
    e.first_render = out
    yield e
    if os.environ.get('WAZO_MM_KEEP_TMP'):
        return
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def stacks(env):
    started = {'primary': SippStack(env, 'primary', PRIMARY).start(),
               'secondary': SippStack(env, 'secondary', SECONDARY).start()}
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture(scope='session')
def kamailio(env, stacks):
    k = Kamailio(env).start()
    yield k
    k.stop()


@pytest.fixture
def rpc(env, kamailio):
    return env.rpc()


@pytest.fixture
def normal_mode(env, kamailio):
    """Each test starts in normal mode, with no lock, both stacks active."""
    from ansible_collections.wazo.maintenance_mode.plugins.module_utils import kamailio_rpc as k
    from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm
    from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
    if kamailio.proc.poll() is not None:
        kamailio.start()
    rm.write_persisted_mode('normal', env.state)
    rm.set_running(env.rpc(), 'normal')
    ml.release_lock(state_dir=env.state, force=True)
    wait_until(lambda: all(d['active'] for d in env.rpc().dispatcher_list()), 10, 0.2, 'both stacks active')
    yield


def kamailio_down_env(tmp_path):
    """Paths where no Kamailio answers."""
    return str(tmp_path / 'nothing.sock')


__all__ = ['Env', 'Kamailio', 'KamailioUnavailable', 'wait_until', 'sipp_uac', 'run_render', 'recap',
           'PROXY', 'PRIMARY', 'SECONDARY', 'DOMAINS']
