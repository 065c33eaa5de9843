"""The full loop on loopback, shared by test_full_loop.py and bench/failover.py.

Uses the Kamailio engineer's harness (tests/kamailio/conftest.py, loaded as a plain module, so its
session fixtures are not involved): the kamailio_proxy role's own config rendered into a temporary root,
a real Kamailio, SIPp stacks. On its own addresses (127.0.24.10-12, ports 15260-15262) so it never
collides with the Kamailio tests' proxy when both run in one pytest session.
"""
import importlib.util
import os
import shutil
import signal
import tempfile
import threading
import time
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KAMAILIO_HARNESS = os.path.join(ROOT, 'tests', 'kamailio', 'conftest.py')

PROXY = ('127.0.24.10', 15260)
PRIMARY = ('127.0.24.11', 15261)
SECONDARY = ('127.0.24.12', 15262)
PHONE_IP = '127.0.24.20'


def load_harness():
    if not os.path.exists(KAMAILIO_HARNESS):
        return None
    spec = importlib.util.spec_from_file_location('wazo_mm_kamailio_harness', KAMAILIO_HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # our own addresses (sipp_uac reads these module globals)
    mod.PROXY, mod.PRIMARY, mod.SECONDARY, mod.PHONE_IP = PROXY, PRIMARY, SECONDARY, PHONE_IP
    return mod


class Loop:
    """Kamailio + two SIPp stacks + the HA check daemon loop (in a thread, real backend)."""

    def __init__(self, harness, hc, **cfg):
        self.k = harness
        self.hc = hc
        self.cfg_overrides = cfg
        self.base = tempfile.mkdtemp(prefix='wazo-mm-hacheck.', dir='/tmp')
        os.chmod(self.base, 0o755)
        self.env = harness.Env(self.base)
        self.env.vars.update({
            'wazo_mm_kamailio_address': PROXY[0], 'wazo_mm_kamailio_port': PROXY[1],
            'wazo_mm_primary_address': PRIMARY[0], 'wazo_mm_primary_sip_port': PRIMARY[1],
            'wazo_mm_secondary_address': SECONDARY[0], 'wazo_mm_secondary_sip_port': SECONDARY[1],
        })
        os.makedirs(self.env.logs)
        self.kamailio = None
        self.stacks = {}
        self.thread = None
        self.stop_event = threading.Event()
        self.check = None
        self.log = None

    # -- setup / teardown
    def start(self):
        rc, out = self.k.run_render(self.env)
        if rc != 0:
            raise AssertionError('render failed:\n' + out[-3000:])
        self.stacks = {'primary': self.k.SippStack(self.env, 'primary', PRIMARY).start(),
                       'secondary': self.k.SippStack(self.env, 'secondary', SECONDARY).start()}
        self.kamailio = self.k.Kamailio(self.env).start()
        rpc = self.env.rpc()
        self.k.wait_until(lambda: len(rpc.dispatcher_list()) == 2 and all(d['active'] for d in rpc.dispatcher_list()),
                          10, 0.2, 'both stacks active')
        return self

    def start_check(self, log_stream=None, **overrides):
        base = dict(primary=PRIMARY[0], primary_port=PRIMARY[1], secondary=SECONDARY[0],
                    secondary_port=SECONDARY[1], state_dir=self.env.state, rpc_transport='dgram',
                    rpc_path=self.env.sock, failover_commands=[], failback_commands=[])
        base.update(self.cfg_overrides)
        base.update(overrides)
        cfg = self.hc.Config(**base).validate()
        self.log = self.hc.Log(stream=log_stream or open(os.path.join(self.env.logs, 'ha-check.log'), 'a'),
                               prefix=False, debug=True)
        self.stop_event.clear()
        holder = {}

        def target():
            holder['check'] = self.hc.run(cfg, self.log, self.stop_event)
        self.thread = threading.Thread(target=target, name='ha-check', daemon=True)
        self.thread.start()
        self.holder = holder
        # running when the state file says so (bounded)
        self.k.wait_until(lambda: self.state().get('state') == 'normal', 10, 0.1, 'HA check running')
        return self

    def reset(self):
        """Between tests: check stopped, both stacks answering, normal mode, no lock, no state file."""
        from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock, route_mode
        self.stop_check()
        for name, s in self.stacks.items():
            try:
                os.killpg(s.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            if s.proc.poll() is not None:
                s.start()
        route_mode.write_persisted_mode('normal', self.env.state)
        rm.set_running(self.env.rpc(), 'normal')
        maintenance_lock.release_lock(state_dir=self.env.state, force=True)
        try:
            os.unlink(os.path.join(self.env.state, 'ha-check.json'))
        except OSError:
            pass
        rpc = self.env.rpc()
        self.k.wait_until(lambda: all(d['active'] for d in rpc.dispatcher_list()), 10, 0.2, 'both stacks active')

    def stop_check(self):
        self.stop_event.set()
        if self.thread:
            self.thread.join(10)

    def close(self):
        self.stop_check()
        for s in self.stacks.values():
            try:
                os.killpg(s.proc.pid, signal.SIGCONT)
            except (OSError, AttributeError):
                pass
            s.stop()
        if self.kamailio:
            self.kamailio.stop()
        if not os.environ.get('WAZO_MM_KEEP_TMP'):
            shutil.rmtree(self.base, ignore_errors=True)

    # -- observations
    def state(self):
        import json
        try:
            with open(os.path.join(self.env.state, 'ha-check.json')) as f:
                return json.load(f)
        except (IOError, OSError, ValueError):
            return {}

    def mode(self):
        return rm.running_mode(self.env.rpc(timeout=1))

    def persisted(self):
        from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock, route_mode
        return route_mode.read_persisted_mode(self.env.state)

    def wait_mode(self, name, timeout, interval=0.02):
        """Seconds until the running route mode is `name` (bounded by timeout), else None."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.mode() == name:
                    return time.monotonic() - start
            except Exception:  # pylint: disable=broad-except
                pass
            time.sleep(interval)
        return None

    # -- faults
    def silence_primary(self, how='kill'):
        """kill: SIPp gone (ICMP port unreachable); stop: SIGSTOP, the socket stays but nothing answers."""
        s = self.stacks['primary']
        if how == 'stop':
            os.killpg(s.proc.pid, signal.SIGSTOP)
        else:
            s.stop()

    def revive_primary(self, how='kill'):
        s = self.stacks['primary']
        if how == 'stop':
            os.killpg(s.proc.pid, signal.SIGCONT)
        else:
            s.start()

    def call(self, timeout=10):
        """One call from a phone through the proxy; returns the stack that answered, or None."""
        res = self.k.sipp_uac(self.env, calls=1, timeout=timeout)
        stacks = list(res.answered.values())
        return stacks[0] if stacks else None
