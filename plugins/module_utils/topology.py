# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sites of an inventory: which hosts form each site's proxy, primary, secondary and NFS server.

A site is a proxy, a primary and a secondary (and the NFS server of its voicemail, the proxy by default).
Hosts name their site with the variable ``wazo_mm_site`` (set on a group per site); a host without it is in
the site ``default``, so a one-site inventory needs nothing new. The group of a host (proxy, primary,
secondary, nfs_server) gives its part in its site. Used by the preflight role (filter ``site_topology``)
and by the fleet report; the messages for the site ``default`` are the one-site messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

DEFAULT_SITE = 'default'
PARTS = ('proxy', 'primary', 'secondary')
SITE_RE_TEXT = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'


def _valid_site_name(name):
    return isinstance(name, str) and re.match(SITE_RE_TEXT, name) is not None


def _prefix(site):
    return '' if site == DEFAULT_SITE else "Site '%s': " % site


def site_topology(groups, hosts):
    """Split the inventory into sites.

    ``groups``: the inventory's groups (name -> host names, in inventory order).
    ``hosts``: host name -> {'site': name or None, 'address': the address the others reach it at}, for every
    host of the groups proxy, primary, secondary and nfs_server.
    Returns {'sites': {site: topology}, 'order': [site, ...] (order of the sites' proxies, then the others),
    'errors': {site: [message, ...]}, 'host_site': {host: site}, 'run_groups': {site: [[host, group], ...]}};
    a site with errors has no topology.
    A topology is {part: {'host': name, 'address': address}} for proxy, primary, secondary, nfs_server.
    """
    groups = groups or {}
    host_site = {}
    errors = {}
    order = []
    for group in PARTS + ('nfs_server',):
        for host in groups.get(group) or []:
            site = (hosts.get(host) or {}).get('site')
            site = DEFAULT_SITE if site in (None, '') else site
            host_site[host] = site
            if site not in order:
                order.append(site)
            if not _valid_site_name(site):
                errors.setdefault(site, []).append(
                    "Host %s: wazo_mm_site must be a short name of letters, digits, '.', '_' or '-'; got %r."
                    % (host, site))
    sites = {}
    for site in order:
        prefix = _prefix(site)
        found = {}
        for part in PARTS:
            in_part = [h for h in groups.get(part) or [] if host_site.get(h) == site]
            if len(in_part) != 1:
                errors.setdefault(site, []).append(
                    "%sInventory group '%s' must hold exactly one host%s; it holds %d%s." % (
                        prefix, part, ' of the site' if prefix else '', len(in_part),
                        (': ' + ', '.join(in_part)) if in_part else ''))
            else:
                found[part] = in_part[0]
        if len(found) == len(PARTS) and len(set(found.values())) != len(PARTS):
            errors.setdefault(site, []).append(
                '%sThe proxy, primary and secondary groups must name three different hosts; got proxy=%s, '
                'primary=%s, secondary=%s.' % (prefix, found['proxy'], found['primary'], found['secondary']))
        if site in errors:
            continue
        nfs = [h for h in groups.get('nfs_server') or [] if host_site.get(h) == site]
        found['nfs_server'] = nfs[0] if nfs else found['proxy']
        topology = dict((part, {'host': host, 'address': (hosts.get(host) or {}).get('address') or host})
                        for part, host in found.items())
        addresses = [topology[part]['address'] for part in PARTS]
        if len(set(addresses)) != len(PARTS):
            errors.setdefault(site, []).append(
                '%sThe hosts need three different addresses (wazo_mm_address, default ansible_host); got %s.' % (
                    prefix, ', '.join('%s %s=%s' % (part, topology[part]['host'], topology[part]['address'])
                                      for part in PARTS)))
            continue
        sites[site] = topology
    order.sort(key=lambda s: _proxy_rank(groups, sites, s))
    run_groups = dict((site, run_groups_of(topology)) for site, topology in sites.items())
    return {'sites': sites, 'order': order, 'errors': errors, 'host_site': host_site, 'run_groups': run_groups}


def _proxy_rank(groups, sites, site):
    proxies = list(groups.get('proxy') or [])
    proxy = sites.get(site, {}).get('proxy', {}).get('host')
    return proxies.index(proxy) if proxy in proxies else len(proxies)


def site_hosts(topology, parts=('proxy', 'primary', 'secondary')):
    """The distinct hosts of one site's topology for these parts, in that order."""
    result = []
    for part in parts:
        host = topology[part]['host']
        if host not in result:
            result.append(host)
    return result


# The groups the playbooks' plays run on, filled site by site by the preflight role (add_host keeps the order,
# so `serial` batches of N sites are N whole sites): group -> the parts of a site in it, in order.
RUN_GROUPS = (
    ('wazo_mm_run_proxies', ('proxy',)),
    ('wazo_mm_run_stacks', ('primary', 'secondary')),
    ('wazo_mm_run_sites', ('proxy', 'primary', 'secondary')),
    ('wazo_mm_run_voicemail', ('nfs_server', 'primary', 'secondary')),
)


def run_groups_of(topology):
    """[[host, group], ...] for one site: its hosts in each run group, in order."""
    return [[host, group] for group, parts in RUN_GROUPS for host in site_hosts(topology, parts)]
