# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: site_topology
short_description: Split the inventory into sites (proxy, primary, secondary, NFS server of each)
version_added: 0.2.0
description:
  - Used by the preflight role. A site is named by the host variable C(wazo_mm_site) (set on a group per site);
    hosts without it form the site C(default), so a one-site inventory needs nothing new.
  - Returns C(sites) (site -> topology, each part C({host, address})), C(order) (the sites in the order of their
    proxies), C(errors) (site -> messages; such a site has no topology) and C(host_site) (host -> site).
  - The rules are in C(plugins/module_utils/topology.py).
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
positional: _input, hosts
options:
  _input:
    description: The inventory's C(groups).
    type: dict
    required: true
  hosts:
    description: Host name -> C({site, address}) for the hosts of the groups proxy, primary, secondary, nfs_server.
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Show the sites
  ansible.builtin.debug:
    msg: "{{ groups | wazo.maintenance_mode.site_topology({'kam1': {'site': 'paris', 'address': '192.0.2.10'}}) }}"
'''

RETURN = r'''
_value:
  description: C(sites), C(order), C(errors), C(host_site).
  type: dict
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.topology import site_topology as _site_topology


def site_topology(groups, hosts):
    if not isinstance(groups, Mapping) or not isinstance(hosts, Mapping):
        raise AnsibleFilterError('site_topology expects the groups and a mapping of hosts')
    return _site_topology(dict((k, list(v)) for k, v in groups.items()),
                          dict((k, dict(v)) for k, v in hosts.items()))


class FilterModule(object):
    def filters(self):
        return {'site_topology': site_topology}
