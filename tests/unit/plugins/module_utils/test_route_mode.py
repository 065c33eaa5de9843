# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""route_mode.switch: the one order (file, then Kamailio, then both read back), with a fake RPC."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import kamailio_rpc as k
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import route_mode as rm


class FakeRPC:
    """$shv(routemode) in memory; records what the persisted file held at each RPC call."""

    def __init__(self, state_dir, value=0, refuse=False, down=False):
        self.value, self.refuse, self.down, self.state_dir = value, refuse, down, state_dir
        self.seen = []

    def shv_get(self, name):
        if self.down:
            raise k.KamailioUnavailable('Kamailio RPC socket /x does not exist')
        return self.value

    def shv_set_int(self, name, value):
        self.seen.append(('set', value, rm.read_persisted_mode(self.state_dir)))
        if self.refuse:
            raise k.KamailioRPCFault(500, 'refused', 'pv.shvSet')
        self.value = value


def test_file_is_written_before_kamailio(tmp_path):
    rpc = FakeRPC(str(tmp_path))
    assert rm.switch(rpc, 'maintenance', str(tmp_path)) == ('normal', 'maintenance')
    # when Kamailio was told, the file already said maintenance: a restart at that moment keeps the mode
    assert rpc.seen == [('set', 2, 'maintenance')]
    assert rm.read_persisted_mode(str(tmp_path)) == 'maintenance' and rpc.value == 2


def test_refused_switch_puts_the_file_back(tmp_path):
    rm.write_persisted_mode('normal', str(tmp_path))
    rpc = FakeRPC(str(tmp_path), refuse=True)
    with pytest.raises(k.KamailioRPCFault):
        rm.switch(rpc, 'maintenance', str(tmp_path))
    assert rm.read_persisted_mode(str(tmp_path)) == 'normal' and rpc.value == 0


def test_kamailio_down_touches_nothing(tmp_path):
    rpc = FakeRPC(str(tmp_path), down=True)
    with pytest.raises(k.KamailioUnavailable):
        rm.switch(rpc, 'maintenance', str(tmp_path))
    assert rm.read_persisted_mode(str(tmp_path)) is None


@pytest.mark.parametrize('mode, expected', [('normal', 'normal'), (0, 'normal'), ('maintenance', 'maintenance'),
                                            (2, 'maintenance')])
def test_modes_by_name_or_value(tmp_path, mode, expected):
    rpc = FakeRPC(str(tmp_path), value=2 if expected == 'normal' else 0)
    assert rm.switch(rpc, mode, str(tmp_path))[1] == expected


@pytest.mark.parametrize('mode', ['maint', 1, None, 'Normal'])
def test_unknown_modes_are_refused_before_anything(tmp_path, mode):
    rpc = FakeRPC(str(tmp_path))
    with pytest.raises(rm.RouteModeError):
        rm.switch(rpc, mode, str(tmp_path))
    assert rpc.seen == [] and rm.read_persisted_mode(str(tmp_path)) is None


def test_stack_sets_and_directions():
    assert rm.STACK_SET == {'primary': 1, 'secondary': 2}
    assert [rm.stack_set(rm.MODE_STACK[m]) for m in ('normal', 'maintenance')] == [1, 2]
    assert rm.LEFT_STACK == {'normal': 'secondary', 'maintenance': 'primary'}
    with pytest.raises(rm.RouteModeError):
        rm.stack_set('tertiary')
