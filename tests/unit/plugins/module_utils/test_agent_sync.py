# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""agent_sync: the configuration and the daemon's rounds against two stand-in stacks on loopback (real TLS)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import agent_sync

D = ('1001', 'default')


class Harness:
    def __init__(self, stacks, tmp_path):
        self.cfg = agent_sync.Config.load(stacks.config(tmp_path / 'agent-sync.conf',
                                                        state_dir=str(tmp_path / 'state')))
        self.traffic = 'primary'
        self.lines = []
        self.restart()
        self.now = 1000.0

    def restart(self):
        """A new daemon (same state directory)."""
        self.mirror = agent_sync.Mirror(self.cfg, dict((s, self.cfg.client(s)) for s in agent_sync.STACKS),
                                        lambda level, msg: self.lines.append((level, msg)),
                                        read_traffic=lambda: self.traffic)

    def round(self, advance=0.0):
        self.now += advance
        return self.mirror.round(self.now)

    def said(self, text):
        return [msg for dummy, msg in self.lines if text in msg]


@pytest.fixture
def h(stacks, tmp_path):
    return Harness(stacks, tmp_path)


def test_login_and_logoff_on_the_traffic_stack_are_mirrored(stacks, h):
    stacks.set_logins('primary', {'1001': D})
    h.round()
    assert stacks.logins('secondary') == {'1001': D}
    assert h.said('mirror to the secondary: login 1001 on 1001@default -> OK')
    stacks.set_logins('primary', {})
    h.round(2)
    assert stacks.logins('secondary') == {}
    assert h.said('mirror to the secondary: logoff 1001 (was on 1001@default) -> OK')


def test_switch_hands_over_then_mirrors_the_other_way(stacks, h):
    stacks.set_logins('primary', {'1001': D})
    h.round()
    # maintenance: the secondary carries traffic; an agent logs in there
    h.traffic = 'secondary'
    h.round(2)
    assert h.said('route mode changed: traffic now on the secondary')
    stacks.set_logins('secondary', {'1001': D, '1002': ('1002', 'default')})
    h.round(2)
    assert stacks.logins('primary') == {'1001': D, '1002': ('1002', 'default')}
    # switch back: the secondary's logins are handed over before the primary becomes the source
    stacks.set_logins('secondary', {'1002': ('1002', 'default'), '1003': ('1003', 'default')})
    h.traffic = 'primary'
    h.round(2)
    assert h.said('hand-over: the logins of the secondary copied to the primary')
    assert stacks.logins('primary') == {'1002': ('1002', 'default'), '1003': ('1003', 'default')}
    h.round(2)
    assert stacks.logins('secondary') == {'1002': ('1002', 'default'), '1003': ('1003', 'default')}


def test_hand_over_keeps_what_changed_on_the_new_stack(stacks, h):
    stacks.set_logins('primary', {'1001': D})
    h.round()
    # after the switch, before the next round: a login on the old stack, another one on the new stack
    stacks.set_logins('primary', {'1001': D, '1002': ('1002', 'default')})
    stacks.set_logins('secondary', {'1001': D, '1003': ('1003', 'default')})
    h.traffic = 'secondary'
    h.round(2)
    assert stacks.logins('secondary') == {'1001': D, '1002': ('1002', 'default'), '1003': ('1003', 'default')}
    h.round(2)
    assert stacks.logins('primary') == stacks.logins('secondary')


def test_hand_over_survives_a_restart(stacks, h):
    # the daemon stops in maintenance; an agent logs in on the secondary; the route goes back to normal (a failback)
    h.traffic = 'secondary'
    h.round()
    stacks.set_logins('secondary', {'1002': ('1002', 'default')})
    h.traffic = 'primary'
    h.restart()
    h.round(2)
    assert h.said('route mode changed: traffic now on the primary (was the secondary)')
    assert stacks.logins('primary') == {'1002': ('1002', 'default')}
    h.round(2)
    assert stacks.logins('secondary') == {'1002': ('1002', 'default')}


def test_agentd_down_is_reported_and_retried_with_backoff(stacks, h):
    stacks.stop('secondary', 'agentd')
    stacks.set_logins('primary', {'1001': D})
    assert h.round() is None
    assert h.said('agentd of the secondary unreachable') and h.said('retry in 0.5 s')
    assert h.round(0.1) is None and len(h.said('unreachable')) == 1      # waiting: no request
    h.round(0.5)
    assert h.said('retry in 1 s')
    h.round(1.1)
    assert h.said('retry in 2 s')
    h.round(2.1)
    assert h.said('retry in 2 s')[1:]                                     # capped at retry_max
    stacks.start('secondary', roles=('agentd',))
    h.round(2.1)
    assert h.said('agentd of the secondary reachable again')
    assert stacks.logins('secondary') == {'1001': D}


def test_failover_with_the_old_stack_down_gives_up_the_hand_over(stacks, h):
    stacks.set_logins('primary', {'1001': D})
    h.round()
    stacks.stop('primary', 'agentd')
    h.traffic = 'secondary'
    h.round(2)
    assert h.said('agentd of the primary unreachable')
    h.round(0.6)
    assert h.said('hand-over from the primary given up')
    assert stacks.logins('secondary') == {'1001': D}


def test_no_route_mode_yet(h):
    h.traffic = None
    assert h.round() is None and h.said('routemode.cfg missing')


@pytest.mark.parametrize('text, error', [
    ('[agent-sync]\nprimary = 10.0.0.1\nsecondary = 10.0.0.1\nusername = u\npassword = p\n', 'same address'),
    ('[agent-sync]\nprimary = x\nsecondary = 10.0.0.2\nusername = u\npassword = p\n', 'not an IP'),
    ('[agent-sync]\nprimary = 10.0.0.1\nsecondary = 10.0.0.2\nusername = u\n', 'password: missing'),
    ('[agent-sync]\nprimary = 10.0.0.1\nsecondary = 10.0.0.2\nusername = u\npassword = p\nbogus = 1\n', 'unknown key'),
    ('[other]\n', 'no [agent-sync] section'),
])
def test_config_refused(tmp_path, text, error):
    path = tmp_path / 'c.conf'
    path.write_text(text)
    with pytest.raises(agent_sync.ConfigError) as exc:
        agent_sync.Config.load(str(path))
    assert error in str(exc.value)
