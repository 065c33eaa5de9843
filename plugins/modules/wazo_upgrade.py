#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: wazo_upgrade
short_description: Upgrade a Wazo Platform stack with wazo-upgrade, and prove it worked
version_added: 0.1.0
description:
  - Runs C(wazo-upgrade -f) (non-interactive) on a Wazo stack, or C(wazo-upgrade -d -f) to only
    download the packages ahead of the maintenance window.
  - Reads the installed and candidate C(wazo-platform) versions from C(LANG=C apt-cache policy
    wazo-platform), with the same pattern wazo-upgrade uses. When the installed version is already
    the candidate, nothing runs and nothing changes, so a play that failed half-way can be re-run.
  - The C(wazo-upgrade) wrapper pipes the upgrade through C(tee) and exits 0 even when the upgrade
    failed, so its exit code is never trusted. Success is decided from the output and the part of
    O(log_path) this run appended (the wazo-upgrade error markers, apt's C(E:) lines), then, after
    a full upgrade, from C(wazo-service status) (0 running, 1 stopped, 2 failed), from the absence
    of the udp/5060 DROP rule C(wazo-service stop) inserts, and from the installed version being
    the candidate.
  - The C(WARNING - The following configuration files were overwritten during the upgrade) list
    is returned in RV(upgrade_warnings) and RV(overwritten_conffiles), and shown as a warning.
  - Debian-major upgrades that also need C(wazo-dist-upgrade) are not handled.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description:
      - Reports the installed and the candidate versions and whether an upgrade is available
        (as RV(ignore:changed)), and runs nothing. The apt cache is not refreshed in check mode.
  diff_mode:
    support: partial
    description: The diff shows the C(wazo-platform) version before and after.
options:
  state:
    description:
      - V(upgraded) upgrades the stack (C(wazo-upgrade -f)); all Wazo services are stopped while it runs.
      - V(downloaded) only downloads the packages (C(wazo-upgrade -d -f)); the services keep running,
        only the C(wazo-upgrade) package itself is upgraded, and a later V(upgraded) is shorter.
    type: str
    choices: [upgraded, downloaded]
    default: upgraded
  command:
    description:
      - The wazo-upgrade command, a name looked up in E(PATH) or an absolute path.
      - Must write O(log_path) like the upstream wrapper does for the log to be returned and checked.
    type: str
    default: wazo-upgrade
  log_path:
    description:
      - The log wazo-upgrade appends to. The part this run appended is returned and searched for errors.
    type: path
    default: /var/log/wazo-upgrade.log
  timeout:
    description:
      - Seconds after which the upgrade is killed and the task fails (the stack may then be half-upgraded,
        see the log). V(0) waits forever. Needs the C(timeout) command (coreutils) when not V(0).
    type: int
    default: 7200
  update_cache:
    description:
      - Run C(apt-get update) before reading the candidate version (not in check mode), so that a
        stale apt cache does not hide an available upgrade.
    type: bool
    default: true
  expected_version:
    description:
      - The C(wazo-platform) version the stack must end at, for example V(25.03), so that two stacks
        are upgraded to the same version. Nothing runs and the task fails when apt's candidate is
        another version (pin it first with C(wazo-dist -a wazo-<version>)).
      - Already installed counts as success, without running anything.
    type: str
  check_services:
    description:
      - After a full upgrade, require C(wazo-service status) to exit 0 (all services running).
    type: bool
    default: true
  ignore_services:
    description:
      - Services that are stopped on purpose on this stack (for example V(wazo-provd), which the
        setup disables on the secondary). When C(wazo-service status) reports services stopped or
        failed, its per-service lines are read and only the services not listed here count.
    type: list
    elements: str
    default: []
  services_wait:
    description:
      - Seconds to wait for C(wazo-service status) to report every service running after the upgrade
        (some take a moment to start). V(0) checks once.
    type: int
    default: 60
  check_firewall:
    description:
      - After a full upgrade, require that no udp/5060 DROP rule is left in the iptables INPUT chain.
      - When C(iptables) is missing or cannot list the rules, a warning is shown instead.
    type: bool
    default: true
  fail_on_conffiles:
    description:
      - Fail when wazo-upgrade reports configuration files it overwrote (they must be merged by hand,
        then C(wazo-service restart)). By default they are only a warning.
    type: bool
    default: false
requirements:
  - A Debian-based Wazo Platform stack with C(wazo-upgrade), C(apt-cache) and C(wazo-service), run as root.
notes:
  - The wizard must have been run (wazo-upgrade refuses otherwise, which this module reports as a failure).
  - When nothing needs upgrading, nothing runs and the services and firewall are not checked either;
    check the stack's health separately before sending traffic to it.
seealso:
  - module: wazo.maintenance_mode.active_calls
  - name: Wazo Platform upgrade documentation
    description: Options, troubleshooting and the cluster procedure.
    link: https://wazo-platform.org/uc-doc/upgrade
'''

EXAMPLES = r'''
- name: Download the packages on both stacks before the maintenance window
  wazo.maintenance_mode.wazo_upgrade:
    state: downloaded

- name: Show what an upgrade would do
  wazo.maintenance_mode.wazo_upgrade:
  check_mode: true
  register: plan

- name: Upgrade the secondary to the version the primary will get (async, so SSH can drop meanwhile)
  wazo.maintenance_mode.wazo_upgrade:
    state: upgraded
    expected_version: "{{ plan.candidate }}"
    timeout: 3600
  async: 3700
  poll: 15
  register: upgrade

- name: Keep the upgrade log on the controller
  ansible.builtin.copy:
    content: "{{ upgrade.log | join('\n') }}\n"
    dest: "reports/{{ inventory_hostname }}-wazo-upgrade.log"
    mode: "0644"
  delegate_to: localhost
'''

RETURN = r'''
version_before:
  description: C(wazo-platform) version installed before the task (null if not installed).
  returned: always
  type: str
  sample: "24.05"
version_after:
  description:
    - C(wazo-platform) version installed after the task.
    - In check mode, the version it would be.
  returned: always
  type: str
  sample: "25.03"
candidate:
  description: The version apt would install (after the run, wazo-upgrade refreshes the apt cache itself).
  returned: always
  type: str
  sample: "25.03"
upgrade_available:
  description: Whether the candidate was newer than the installed version before the task.
  returned: always
  type: bool
  sample: true
cmd:
  description: The upgrade command run (empty when nothing ran).
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/wazo-upgrade", "-f"]
rc:
  description: Exit code of the upgrade command; informative only, the wrapper exits 0 on failure too.
  returned: when the upgrade command ran
  type: int
  sample: 0
log:
  description: The lines this run appended to O(log_path) (the command's output when the log did not grow).
  returned: always
  type: list
  elements: str
  sample: ["wazo-upgrade started at 2026-01-10_02:00:01", "Upgrading wazo-upgrade", "..."]
log_path:
  description: The wazo-upgrade log on the managed host.
  returned: always
  type: str
  sample: /var/log/wazo-upgrade.log
errors:
  description: The lines carrying an error marker.
  returned: always
  type: list
  elements: str
  sample: ["******************* ERROR *************************", "An error occurred during the upgrade."]
error_markers:
  description: The distinct error markers found.
  returned: always
  type: list
  elements: str
  sample: ["An error occurred during the upgrade."]
upgrade_warnings:
  description: Warnings from wazo-upgrade (overwritten configuration files).
  returned: always
  type: list
  elements: str
  sample: ["WARNING: The following configuration files were overwritten during the upgrade: /etc/systemd/system.conf"]
overwritten_conffiles:
  description: Configuration files wazo-upgrade overwrote (the old one is kept as C(FILE.dpkg-old)).
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/system.conf"]
services_status:
  description: C(running), C(stopped) or C(failed) from C(wazo-service status), C(unknown) for another exit code.
  returned: when the services were checked
  type: str
  sample: running
firewall_drop_rules:
  description: udp/5060 DROP rules left in the iptables INPUT chain.
  returned: when the firewall was checked
  type: list
  elements: str
  sample: []
'''

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.wazo_upgrade import (
    WazoVersionError,
    find_sip_drop_rules,
    parse_apt_policy,
    parse_upgrade_output,
    services_status,
    not_running_services,
)

UPGRADE_ENV = dict(DEBIAN_FRONTEND='noninteractive', APT_LISTCHANGES_FRONTEND='none')
LOG_TAIL_BYTES = 4096
SERVICES_POLL = 2


class WazoUpgrade(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module)
        self.result = dict(
            changed=False,
            cmd=[],
            log=[],
            log_path=self.params['log_path'],
            errors=[],
            error_markers=[],
            upgrade_warnings=[],
            overwritten_conffiles=[],
        )

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def run(self, argv, **kwargs):
        res = self.runner.run(argv, **kwargs)
        return res.rc, res.out, res.err

    def bin(self, name):
        return self.runner.bin(name)

    # --- versions ------------------------------------------------------------------------------
    def versions(self):
        rc, out, err = self.run([self.bin('apt-cache'), 'policy', 'wazo-platform'])
        try:
            return parse_apt_policy(out)
        except WazoVersionError as exc:
            self.fail('cannot read the wazo-platform version (apt-cache policy rc=%s): %s %s' % (rc, exc, err.strip()))

    def update_cache(self):
        rc, out, err = self.run([self.bin('apt-get'), 'update', '-q', '-o', 'DPkg::Lock::Timeout=60'])
        if rc != 0:
            self.fail('apt-get update failed (rc=%s): %s' % (rc, (err or out).strip()[-2000:]))

    # --- log -----------------------------------------------------------------------------------
    def log_mark(self):
        """Where the log ends now: (inode, size, last bytes), None when there is no log yet."""
        path = self.params['log_path']
        try:
            with open(path, 'rb') as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - LOG_TAIL_BYTES))
                return (os.fstat(handle.fileno()).st_ino, size, handle.read(LOG_TAIL_BYTES))
        except (IOError, OSError):
            return None

    def log_since(self, mark):
        """What this run appended to the log (all of it if the log was created or replaced meanwhile)."""
        path = self.params['log_path']
        try:
            with open(path, 'rb') as handle:
                data = handle.read()
                inode = os.fstat(handle.fileno()).st_ino
        except (IOError, OSError):
            return ''
        if mark is not None:
            mark_inode, mark_size, mark_tail = mark
            if inode == mark_inode and data[mark_size - len(mark_tail):mark_size] == mark_tail:
                data = data[mark_size:]
        return data.decode('utf-8', 'replace')

    # --- post-upgrade checks -------------------------------------------------------------------
    def check_services(self):
        path = self.module.get_bin_path('wazo-service', opt_dirs=['/usr/sbin', '/sbin'])
        if not path:
            return 'wazo-service not found'
        deadline = time.time() + self.params['services_wait']
        while True:
            rc, out, err = self.run([path, 'status'])
            status = services_status(rc)
            down = not_running_services(out, self.params['ignore_services'])
            if status in ('stopped', 'failed') and down == {}:
                status = 'running'  # only services stopped on purpose are down
            if status == 'running' or time.time() >= deadline:
                break
            time.sleep(SERVICES_POLL)
        self.result['services_status'] = status
        if status != 'running':
            return 'wazo-service status: %s (rc=%s)%s' % (
                status, rc, ''.join(', %s %s' % (name, state) for name, state in sorted((down or {}).items())))
        return None

    def check_firewall(self):
        path = self.module.get_bin_path('iptables', opt_dirs=['/usr/sbin', '/sbin'])
        if not path:
            self.module.warn('iptables not found: cannot check for a leftover udp/5060 DROP rule')
            return None
        rc, out, err = self.run([path, '-w', '-S', 'INPUT'])
        if rc != 0:
            self.module.warn('iptables -S INPUT failed (rc=%s): %s; leftover udp/5060 DROP not checked'
                             % (rc, (err or out).strip()))
            return None
        rules = find_sip_drop_rules(out)
        self.result['firewall_drop_rules'] = rules
        if rules:
            return 'udp/5060 is still dropped by iptables (%s): SIP cannot reach this stack' % '; '.join(rules)
        return None

    # --- main ----------------------------------------------------------------------------------
    def main(self):
        p = self.params
        download = p['state'] == 'downloaded'
        if p['update_cache'] and not self.module.check_mode:
            self.update_cache()
        before = self.versions()
        installed, candidate = before['installed'], before['candidate']
        self.result.update(version_before=installed, version_after=installed, candidate=candidate,
                           upgrade_available=before['upgrade_available'])
        if installed is None:
            self.fail('wazo-platform is not installed: this is not a Wazo stack')

        expected = p['expected_version']
        if expected:
            if installed == expected:
                self.module.exit_json(**self.result)
            if candidate != expected:
                self.fail('wazo-platform %s is installed and apt would install %s, not the expected %s: '
                          'pin the version first (wazo-dist -a wazo-%s)' % (installed, candidate, expected, expected))
        if not before['upgrade_available']:
            self.module.exit_json(**self.result)

        self.result['changed'] = True
        if self.module._diff and not download:
            self.result['diff'] = dict(before='wazo-platform %s\n' % installed, after='wazo-platform %s\n' % candidate)
        if self.module.check_mode:
            if not download:
                self.result['version_after'] = candidate
            self.module.exit_json(**self.result)

        self.upgrade(download)
        self.module.exit_json(**self.result)

    def upgrade(self, download):
        p = self.params
        cmd = [self.bin(p['command'])] + (['-d'] if download else []) + ['-f']
        self.result['cmd'] = cmd
        mark = self.log_mark()
        # No pipe here, so no pipefail to think about: the rc is kept for the record only, the
        # wrapper's own `| tee` throws the real one away.
        res = self.runner.run(cmd, timeout=p['timeout'], kill_after=60, environ=UPGRADE_ENV)
        rc, out, err = res.rc, res.out, res.err
        self.result['rc'] = rc
        appended = self.log_since(mark)
        self.result['log'] = (appended or out + err).splitlines()

        # The output and the log carry the same lines; parse both in case one of them is missing
        # (a command that does not log, a log that could not be read).
        found = parse_upgrade_output(appended)
        extra = parse_upgrade_output(out + '\n' + err)
        for key in ('errors', 'error_markers', 'overwritten_conffiles'):
            src = 'markers' if key == 'error_markers' else key
            self.result[key] = _merge(found[src], extra[src])
        messages = _merge(found['error_messages'], extra['error_messages'])
        if self.result['overwritten_conffiles']:
            self.result['upgrade_warnings'] = _merge(found['warnings'], extra['warnings'])
            for warning in self.result['upgrade_warnings']:
                self.module.warn(warning)

        problems = []
        if res.timed_out:
            problems.append('killed after the %d s timeout (the stack may be half-upgraded)' % p['timeout'])
        if self.result['error_markers']:
            text = 'error markers found: %s' % ', '.join('"%s"' % m for m in self.result['error_markers'])
            if messages:
                text += ' (%s)' % '; '.join(messages)
            problems.append(text)
        if self.result['overwritten_conffiles'] and p['fail_on_conffiles']:
            problems.append('configuration files overwritten: %s' % ', '.join(self.result['overwritten_conffiles']))

        after = self.versions()
        self.result['version_after'] = after['installed']
        self.result['candidate'] = after['candidate']
        if not download:
            if p['check_services']:
                problems.append(self.check_services())
            if p['check_firewall']:
                problems.append(self.check_firewall())
            if after['installed'] != after['candidate']:
                problems.append('wazo-platform is at %s, not at the candidate %s' % (after['installed'], after['candidate']))
            elif p['expected_version'] and after['installed'] != p['expected_version']:
                problems.append('wazo-platform is at %s, not at the expected %s' % (after['installed'], p['expected_version']))
        problems = [problem for problem in problems if problem]
        if problems:
            self.fail('%s failed on this stack: %s. Log: %s (this run\'s lines are returned as log).'
                      % ('wazo-upgrade -d (download only)' if download else 'wazo-upgrade', '; '.join(problems), p['log_path']))
        if download and _nothing_downloaded(appended or out):
            self.result['changed'] = False


def _nothing_downloaded(text):
    """apt-get -d said everything was already in its cache, and wazo-upgrade itself was current."""
    return bool(re.search(r'^Need to get 0 B/', text, re.M)) and not re.search(r'^Setting up ', text, re.M)


def _merge(first, second):
    merged = list(first)
    for item in second:
        if item not in merged:
            merged.append(item)
    return merged


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='upgraded', choices=['upgraded', 'downloaded']),
            command=dict(type='str', default='wazo-upgrade'),
            log_path=dict(type='path', default='/var/log/wazo-upgrade.log'),
            timeout=dict(type='int', default=7200),
            update_cache=dict(type='bool', default=True),
            expected_version=dict(type='str'),
            check_services=dict(type='bool', default=True),
            services_wait=dict(type='int', default=60),
            ignore_services=dict(type='list', elements='str', default=[]),
            check_firewall=dict(type='bool', default=True),
            fail_on_conffiles=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    for name in ('timeout', 'services_wait'):
        if module.params[name] < 0:
            module.fail_json(msg='%s must be 0 or a number of seconds, not %d' % (name, module.params[name]))
    WazoUpgrade(module).main()


if __name__ == '__main__':
    main()
