# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sites of an inventory: one-site inventories unchanged, many sites split by wazo_mm_site, errors per site."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.topology import site_topology


def _hosts(**sites):
    hosts = {}
    octet = 10
    for site, names in sites.items():
        for name in names:
            hosts[name] = {'site': None if site == 'default' else site, 'address': '192.0.2.%d' % octet}
            octet += 1
    return hosts


def test_one_site_inventory_is_the_site_default():
    groups = {'proxy': ['kam'], 'primary': ['w1'], 'secondary': ['w2'], 'nfs_server': ['kam']}
    result = site_topology(groups, _hosts(default=['kam', 'w1', 'w2']))
    assert result['errors'] == {}
    assert result['order'] == ['default']
    topo = result['sites']['default']
    assert topo['proxy'] == {'host': 'kam', 'address': '192.0.2.10'}
    assert topo['nfs_server']['host'] == 'kam'
    assert result['run_groups']['default'] == [
        ['kam', 'wazo_mm_run_proxies'], ['w1', 'wazo_mm_run_stacks'], ['w2', 'wazo_mm_run_stacks'],
        ['kam', 'wazo_mm_run_sites'], ['w1', 'wazo_mm_run_sites'], ['w2', 'wazo_mm_run_sites'],
        ['kam', 'wazo_mm_run_voicemail'], ['w1', 'wazo_mm_run_voicemail'], ['w2', 'wazo_mm_run_voicemail']]


def test_one_site_messages_are_the_one_site_messages():
    groups = {'proxy': ['kam'], 'primary': ['w1', 'w3'], 'secondary': []}
    result = site_topology(groups, _hosts(default=['kam', 'w1', 'w3']))
    assert result['errors']['default'] == [
        "Inventory group 'primary' must hold exactly one host; it holds 2: w1, w3.",
        "Inventory group 'secondary' must hold exactly one host; it holds 0."]
    assert result['sites'] == {}


def test_many_sites_split_by_wazo_mm_site_in_the_order_of_their_proxies():
    groups = {'proxy': ['kb', 'ka'], 'primary': ['a1', 'b1'], 'secondary': ['a2', 'b2'],
              'nfs_server': ['kb', 'ka', 'nfsa']}
    hosts = _hosts(lyon=['kb', 'b1', 'b2'], paris=['ka', 'a1', 'a2', 'nfsa'])
    result = site_topology(groups, hosts)
    assert result['errors'] == {}
    assert result['order'] == ['lyon', 'paris']
    assert result['sites']['paris']['primary']['host'] == 'a1'
    assert result['sites']['lyon']['secondary']['host'] == 'b2'
    # the first nfs_server host of the site
    assert result['sites']['paris']['nfs_server']['host'] == 'ka'
    assert result['host_site']['nfsa'] == 'paris'


def test_a_broken_site_does_not_break_the_others():
    groups = {'proxy': ['ka', 'kb'], 'primary': ['a1', 'b1'], 'secondary': ['a2']}
    result = site_topology(groups, _hosts(paris=['ka', 'a1', 'a2'], lyon=['kb', 'b1']))
    assert set(result['sites']) == {'paris'}
    assert result['errors'] == {'lyon': [
        "Site 'lyon': Inventory group 'secondary' must hold exactly one host of the site; it holds 0."]}


def test_same_address_in_a_site_is_refused_but_sites_may_reuse_private_addresses():
    groups = {'proxy': ['ka', 'kb'], 'primary': ['a1', 'b1'], 'secondary': ['a2', 'b2']}
    hosts = {'ka': {'site': 'paris', 'address': '10.0.0.1'}, 'a1': {'site': 'paris', 'address': '10.0.0.2'},
             'a2': {'site': 'paris', 'address': '10.0.0.2'},
             'kb': {'site': 'lyon', 'address': '10.0.0.1'}, 'b1': {'site': 'lyon', 'address': '10.0.0.2'},
             'b2': {'site': 'lyon', 'address': '10.0.0.3'}}
    result = site_topology(groups, hosts)
    assert list(result['sites']) == ['lyon']
    assert result['errors']['paris'][0].startswith("Site 'paris': The hosts need three different addresses")


def test_a_bad_site_name_is_refused():
    groups = {'proxy': ['ka'], 'primary': ['a1'], 'secondary': ['a2']}
    hosts = _hosts(**{'par is': ['ka', 'a1', 'a2']})
    result = site_topology(groups, hosts)
    assert result['sites'] == {}
    assert 'wazo_mm_site must be a short name' in result['errors']['par is'][0]
