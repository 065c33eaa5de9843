"""Fixtures for the HA check tests: the daemon module, a fake clock, a fake proxy backend."""
import json
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
for path in (os.path.join(ROOT, 'roles', 'ha_check', 'files'), os.path.join(ROOT, '.collections')):
    if path not in sys.path:
        sys.path.insert(0, path)

import wazo_ha_check as hc  # noqa: E402  pylint: disable=wrong-import-position


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now

    def wall(self):
        return 1_700_000_000.0 + self.now

    def advance(self, seconds):
        self.now += seconds


class FakeBackend:
    """Route mode + lock as plain attributes; records every set_mode."""

    def __init__(self, mode=0):
        self.mode = mode
        self.lock = None
        self.sets = []
        self.fail_set = None
        self.fail_get = None
        self.ran = []

    def get_mode(self):
        if self.fail_get:
            raise hc.BackendError(self.fail_get)
        return self.mode

    def set_mode(self, value):
        if self.fail_set:
            raise hc.BackendError(self.fail_set)
        self.sets.append(value)
        self.mode = value

    def get_lock(self):
        return self.lock

    def ssh_run(self, host, command):
        self.ran.append((host, command))
        if 'fail' in command:
            return 1, '', 'boom'
        return 0, 'done', ''


class MemoryState:
    """The state store seam of HACheck (StateFile in the daemon), kept in memory."""

    def __init__(self, data=None):
        self.data = data or {}
        self.saves = 0

    def load(self):
        return json.loads(json.dumps(self.data))

    def save(self, data):
        self.saves += 1
        self.data = json.loads(json.dumps(data))


class FakeRunner:
    def __init__(self):
        self.batches = []

    def submit(self, name, host, commands):
        self.batches.append((name, host, list(commands)))


@pytest.fixture
def hcmod():
    return hc


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def make_check(clock, backend):
    def _make(store=None, **cfg):
        base = dict(primary='127.0.0.11', secondary='127.0.0.12', down_after=3, probe_interval=0.5,
                    probe_timeout=0.4, failback_delay=60, min_transition_interval=10)
        base.update(cfg)
        config = hc.Config(**base).validate()
        log = hc.Log(stream=open(os.devnull, 'w'), prefix=False, debug=True)
        check = hc.HACheck(config, backend, log, store or MemoryState(), runner=FakeRunner(),
                           clock=clock, wall=clock.wall)
        return check
    return _make
