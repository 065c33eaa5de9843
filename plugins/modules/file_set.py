#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: file_set
short_description: Install a set of text files in one directory in one round trip
version_added: 0.2.0
description:
  - Makes each file of O(files) in the directory O(path) hold the given content, with O(mode), O(owner) and
    O(group). The directory (and its parents) is created when it is missing.
  - One module call for the whole set, where a loop of M(ansible.builtin.copy) costs two round trips per file;
    the roles install the collection's shared Python code (module_utils) on the proxy and the stacks with it.
  - Each changed file is replaced atomically (a reader sees the old or the new content, never a mix).
  - Files of the directory that are not in O(files) are left alone.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description: Reports the files that would change and writes nothing.
  diff_mode:
    support: full
    description: One before/after pair per changed file.
options:
  path:
    description: The directory that holds the files.
    type: path
    required: true
  files:
    description:
      - File name (no directory part) to its text content, written as UTF-8.
      - On the controller, V(query('ansible.builtin.file', ..., rstrip=false)) reads files unchanged.
    type: dict
    required: true
  mode:
    description: Permissions of every file of the set, in octal.
    type: raw
    default: '0644'
  directory_mode:
    description: Permissions of the directory when this module creates it (an existing directory is left as is).
    type: raw
    default: '0755'
  owner:
    description: Owner of the files and of a created directory; unchanged when omitted.
    type: str
  group:
    description: Group of the files and of a created directory; unchanged when omitted.
    type: str
'''

EXAMPLES = r'''
- name: Install the shared Python code under its import path
  wazo.maintenance_mode.file_set:
    path: /usr/local/lib/wazo-mm/ansible_collections/wazo/maintenance_mode/plugins/module_utils
    files: "{{ dict(names | zip(query('ansible.builtin.file', *(names | map('regex_replace', '^', src_dir)),
                                      rstrip=false))) }}"
    owner: root
    group: root
    mode: "0644"
  vars:
    names: [route_mode.py, drain.py]
    src_dir: "{{ role_path }}/../../plugins/module_utils/"
'''

RETURN = r'''
changed_files:
  description: Names of the files whose content, mode or ownership changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [route_mode.py]
created_directory:
  description: Whether the directory was (or would be) created.
  returned: always
  type: bool
  sample: false
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write, read_text


def _octal(module, value, name):
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        module.fail_json(msg='%s must be an octal mode such as 0644, not %r' % (name, value))


def _check_names(module, files):
    for name, content in files.items():
        if not name or '/' in name or name in ('.', '..'):
            module.fail_json(msg='file_set: %r is not a plain file name (no directory part)' % name)
        if not isinstance(content, str):
            module.fail_json(msg='file_set: the content of %s must be text' % name)


def _create_directory(module, path, mode, owner, group):
    if os.path.isdir(path):
        return False
    if os.path.exists(path):
        module.fail_json(msg='file_set: %s exists and is not a directory' % path)
    if not module.check_mode:
        os.makedirs(path, mode)
        os.chmod(path, mode)
        module.set_owner_if_different(path, owner, False)
        module.set_group_if_different(path, group, False)
    return True


def _install(module, path, name, content, mode, diffs):
    target = os.path.join(path, name)
    before = None if module.check_mode and not os.path.isdir(path) else read_text(target)
    changed = before != content
    if changed:
        diffs.append(dict(before_header=target if before is not None else '%s (absent)' % target,
                          after_header=target, before=before or '', after=content))
        if module.check_mode:
            return True
        atomic_write(target, content, mode)
    elif os.stat(target).st_mode & 0o7777 != mode:
        changed = True
        diffs.append(dict(before=dict(path=target, mode='%04o' % (os.stat(target).st_mode & 0o7777)),
                          after=dict(path=target, mode='%04o' % mode)))
        if not module.check_mode:
            os.chmod(target, mode)
    if before is not None or not module.check_mode:
        changed = module.set_owner_if_different(target, module.params['owner'], changed)
        changed = module.set_group_if_different(target, module.params['group'], changed)
    return changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            files=dict(type='dict', required=True),
            mode=dict(type='raw', default='0644'),
            directory_mode=dict(type='raw', default='0755'),
            owner=dict(type='str'),
            group=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path, files = params['path'], params['files']
    mode = _octal(module, params['mode'], 'mode')
    directory_mode = _octal(module, params['directory_mode'], 'directory_mode')
    _check_names(module, files)

    created = _create_directory(module, path, directory_mode, params['owner'], params['group'])
    diffs, changed_files = [], []
    for name in sorted(files):
        if _install(module, path, name, files[name], mode, diffs):
            changed_files.append(name)
    result = dict(changed=created or bool(changed_files), changed_files=changed_files,
                  created_directory=created)
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
