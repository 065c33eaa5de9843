# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kamailio_mode with a fake RPC (no Kamailio): decisions, check mode, diff, read-back failure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import io
import json

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import kamailio_rpc as k
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import maintenance_lock as ml
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm
from ansible_collections.wazo.maintenance_mode.plugins.modules import kamailio_mode


class FakeRPC:
    mode = 'normal'
    broken_set = False
    down = False

    def __init__(self, transport='dgram', path=None, timeout=3.0):
        pass

    def shv_get(self, name):
        assert name == 'routemode'
        if FakeRPC.down:
            raise k.KamailioUnavailable('Kamailio RPC socket /x does not exist')
        return rm.mode_value(FakeRPC.mode)

    def shv_set_int(self, name, value):
        assert name == 'routemode'
        if not FakeRPC.broken_set:
            FakeRPC.mode = rm.mode_name(value)


@pytest.fixture(autouse=True)
def fake(monkeypatch):
    FakeRPC.mode, FakeRPC.broken_set, FakeRPC.down = 'normal', False, False
    monkeypatch.setattr(kamailio_mode, 'KamailioRPC', FakeRPC)


def run(args, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            kamailio_mode.main()
    return json.loads(out.getvalue())


def test_read_only(tmp_path):
    res = run({'state_dir': str(tmp_path)})
    assert res['changed'] is False and res['mode'] == 'normal' and res['persisted_mode'] is None


def test_switch_writes_file_and_running(tmp_path):
    res = run({'state_dir': str(tmp_path), 'mode': 'maintenance'}, diff=True)
    assert res['changed'] and res['previous_mode'] == 'normal' and res['mode'] == 'maintenance'
    assert rm.read_persisted_mode(str(tmp_path)) == 'maintenance' and FakeRPC.mode == 'maintenance'
    assert res['diff']['before'].startswith('mode: normal') and res['diff']['after'].startswith('mode: maintenance')
    assert run({'state_dir': str(tmp_path), 'mode': 'maintenance'})['changed'] is False


def test_persisted_differs_from_running_is_a_change(tmp_path):
    rm.write_persisted_mode('normal', str(tmp_path))
    FakeRPC.mode = 'maintenance'
    res = run({'state_dir': str(tmp_path), 'mode': 'maintenance'})
    assert res['changed'] and rm.read_persisted_mode(str(tmp_path)) == 'maintenance'


def test_check_mode(tmp_path):
    res = run({'state_dir': str(tmp_path), 'mode': 'maintenance', 'lock': True}, check=True)
    assert res['changed'] and res['mode'] == 'maintenance' and res['lock']['owner'] == 'ansible'
    assert FakeRPC.mode == 'normal' and rm.read_persisted_mode(str(tmp_path)) is None
    assert ml.read_lock(str(tmp_path)) is None


def test_read_back_mismatch_fails(tmp_path):
    FakeRPC.broken_set = True
    res = run({'state_dir': str(tmp_path), 'mode': 'maintenance'})
    assert res['failed'] and 'runs normal' in res['msg']


def test_kamailio_down_fails_and_touches_nothing(tmp_path):
    FakeRPC.down = True
    res = run({'state_dir': str(tmp_path), 'mode': 'maintenance', 'lock': True})
    assert res['failed'] and 'does not exist' in res['msg']
    assert rm.read_persisted_mode(str(tmp_path)) is None and ml.read_lock(str(tmp_path)) is None


def test_lock_of_another_owner(tmp_path):
    ml.take_lock('upgrade.yml', 'x', str(tmp_path))
    res = run({'state_dir': str(tmp_path), 'mode': 'normal', 'lock': False, 'lock_owner': 'me'})
    assert res['failed'] and 'upgrade.yml' in res['msg']
    res = run({'state_dir': str(tmp_path), 'lock': False, 'lock_owner': 'me', 'lock_force': True})
    assert res['changed'] and res['lock'] is None
