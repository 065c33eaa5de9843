#!/usr/bin/env python
"""One inventory for several labs, each lab a site (wazo_mm_site = the lab's name), as an operator writes it.

    python3 tests/lab/fleet.py OUT_DIR LAB_DIR [LAB_DIR ...]

writes OUT_DIR/inventory.yml (hosts named <lab>-proxy, <lab>-primary, <lab>-secondary; each site's SSH key,
known hosts and lab name on its site group) and links the lab's group_vars beside it.
"""

import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARTS = ('proxy', 'primary', 'secondary')


def lab_name(lab_dir):
    """The lab's name (its site's name in the fleet inventory)."""
    with open(os.path.join(lab_dir, 'inventory.yml')) as handle:
        return yaml.safe_load(handle)['all']['vars']['wazo_mm_lab_name']


def fleet_inventory(lab_dirs):
    """The inventory (a dict) joining the labs' inventories, one site per lab."""
    children = {}
    groups = dict((part, {'hosts': {}}) for part in PARTS)
    groups['nfs_server'] = {'hosts': {}}
    for lab_dir in lab_dirs:
        with open(os.path.join(lab_dir, 'inventory.yml')) as handle:
            lab = yaml.safe_load(handle)['all']
        name = lab['vars']['wazo_mm_lab_name']
        site_hosts = {}
        for part in PARTS:
            (host, hostvars), = lab['children'][part]['hosts'].items()
            site_hosts['%s-%s' % (name, host)] = dict(hostvars or {})
            groups[part]['hosts']['%s-%s' % (name, host)] = {}
        groups['nfs_server']['hosts']['%s-proxy' % name] = {}
        site_vars = dict(lab['vars'])
        site_vars['wazo_mm_site'] = name
        site_vars['wazo_mm_agent_sync_ca_file'] = os.path.join(lab_dir, 'agents-ca', 'ca.crt')
        children['site_%s' % name] = {'vars': site_vars, 'hosts': site_hosts}
    children.update(groups)
    return {'all': {'children': children}}


def main(argv):
    out_dir, lab_dirs = argv[0], argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'inventory.yml')
    with open(path, 'w') as handle:
        handle.write('# Written by tests/lab/fleet.py: %s, one site each.\n' % ', '.join(lab_dirs))
        yaml.safe_dump(fleet_inventory([os.path.abspath(d) for d in lab_dirs]), handle, sort_keys=False)
    link = os.path.join(out_dir, 'group_vars')
    if not os.path.islink(link):
        os.symlink(os.path.join(ROOT, 'tests', 'lab', 'group_vars'), link)
    print(path)


if __name__ == '__main__':
    main(sys.argv[1:])
