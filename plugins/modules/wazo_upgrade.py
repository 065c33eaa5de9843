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
  - The command runs detached from the SSH connection, as the transient systemd service
    C(wazo-mm-upgrade) (C(systemd-run --collect)). When the connection drops, the upgrade goes on and
    its end (exit code, time, killed after O(timeout) or not) is written into
    C(O(state_dir)/upgrade-run.json), its output into C(O(state_dir)/upgrade-run.out). The module waits
    for it, then judges it.
  - A later call finds that run. Still running, it waits for it (bounded by the run's own O(timeout)) instead
    of starting a second C(wazo-upgrade). Finished and not judged yet, it judges and reports it first (its
    failure fails the task, with wazo-upgrade's error messages). O(state=collected) does only that.
  - A failed run is reported by every call until the controller acknowledges it (O(acknowledge), sent after
    it received the result); the call after that starts a new run. The module that judged a run cannot know
    that its result reached the controller (a killed C(ansible-playbook) leaves its module waiting on the
    stack while Ansible's SSH ControlMaster keeps the channel open).
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
  - A stack that needs a reboot after its upgrade (Debian's C(/var/run/reboot-required), with the packages
    of C(/var/run/reboot-required.pkgs); wazo-upgrade itself says nothing about it) is returned in
    RV(reboot_required) and shown as a warning, also added to RV(upgrade_warnings). The module never reboots.
  - Debian-major upgrades that also need C(wazo-dist-upgrade) are not handled.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
attributes:
  check_mode:
    support: full
    description:
      - Reports the installed and the candidate versions and whether an upgrade is available
        (as RV(ignore:changed)), and upgrades nothing. With O(update_cache), C(apt-get update) runs in
        check mode too. A refresh of the package lists is not a configuration change (it is not counted as
        one), and versions compared from stale lists would plan the wrong upgrade.
      - A detached run found on the stack is reported in RV(run) (still running, or finished and not
        reported yet, with the error markers of its output), neither waited for nor marked as reported.
  diff_mode:
    support: partial
    description: The diff shows the C(wazo-platform) version before and after.
options:
  state:
    description:
      - V(upgraded) upgrades the stack (C(wazo-upgrade -f)); all Wazo services are stopped while it runs.
      - V(downloaded) only downloads the packages (C(wazo-upgrade -d -f)); the services keep running,
        only the C(wazo-upgrade) package itself is upgraded, and a later V(upgraded) is shorter.
      - V(collected) starts nothing - it waits for a detached run still going on (started by a task whose
        connection was lost) and reports the result of a finished run no task reported yet (a failed one
        fails the task). Nothing to collect is V(changed=false); so is a collected run (the run changed the
        stack, not this task).
    type: str
    choices: [upgraded, downloaded, collected]
    default: upgraded
  acknowledge:
    description:
      - With O(state=collected), the id (C(id) of RV(run)) of a run whose result the controller received - it is no
        longer reported. Nothing else is done (no wait, no version read).
    type: str
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
      - Seconds after which the upgrade is killed (SIGTERM, SIGKILL a minute later) and the task fails (the
        stack may then be half-upgraded, see the log). V(0) waits forever.
      - A run found still going on is waited for until its own limit (plus two minutes), or this many seconds
        when it has none.
    type: int
    default: 7200
  state_dir:
    description:
      - Directory on the stack for the detached run's record (C(upgrade-run.json)) and output (C(upgrade-run.out)).
    type: path
    default: /var/lib/wazo-maintenance
  update_cache:
    description:
      - Run C(apt-get update) before reading the candidate version, also in check mode (not reported as a
        change), so that a stale apt cache neither hides an available upgrade nor plans an old one.
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
  - A Debian-based Wazo Platform stack with C(wazo-upgrade), C(apt-cache) and C(wazo-service), run as root,
    systemd as init (C(systemd-run), C(systemctl)).
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

- name: Upgrade the secondary to the version the primary will get (it goes on if SSH drops meanwhile)
  wazo.maintenance_mode.wazo_upgrade:
    state: upgraded
    expected_version: "{{ plan.candidate }}"
    timeout: 3600
  register: upgrade

- name: After a lost connection - wait for that upgrade or report its result, start nothing
  wazo.maintenance_mode.wazo_upgrade:
    state: collected

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
  description: The upgrade command run, or the one of the run reported (empty when nothing ran).
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
reboot_required:
  description: The stack needs a reboot to finish its upgrade (Debian's C(/var/run/reboot-required)).
  returned: after a full upgrade, and when the stack is already at the O(expected_version)
  type: bool
  sample: false
reboot_required_packages:
  description: The packages that asked for the reboot (C(/var/run/reboot-required.pkgs)).
  returned: when RV(reboot_required) is returned
  type: list
  elements: str
  sample: ["linux-image-6.1.0-28-amd64"]
run:
  description:
    - The last detached wazo-upgrade run recorded on the stack (C(upgrade-run.json)), when there is one.
    - C(status) is V(running), V(finished) (not judged yet, in check mode), V(lost) (its runner was killed, e.g.
      a reboot, before writing its end), V(succeeded) or V(failed); C(collected) tells whether the controller
      acknowledged its result; C(attached) is true when this task waited for or reported a run it did not start.
  returned: when a run is recorded
  type: dict
  sample: {"id": "1767999601000-4242", "mode": "upgraded", "status": "succeeded", "target": "25.03",
           "version_before": "24.05", "started": "2026-01-10T02:00:01Z", "finished": "2026-01-10T02:09:44Z",
           "rc": 0, "collected": true, "attached": false, "error_markers": [], "error_messages": [], "msg": ""}
firewall_drop_rules:
  description: udp/5060 DROP rules left in the iptables INPUT chain.
  returned: when the firewall was checked
  type: list
  elements: str
  sample: []
'''

import os
import re
import select
import socket
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.wazo_upgrade import (
    REBOOT_REQUIRED_FILE,
    REBOOT_REQUIRED_PKGS_FILE,
    WazoVersionError,
    find_sip_drop_rules,
    not_running_services,
    parse_apt_policy,
    parse_upgrade_output,
    reboot_required,
    reboot_warning,
    services_status,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import wazo_upgrade_run as runs

UPGRADE_ENV = dict(DEBIAN_FRONTEND='noninteractive', APT_LISTCHANGES_FRONTEND='none',
                   LANG='C', LC_ALL='C', LC_MESSAGES='C')
SERVICES_POLL = 2
RUN_POLL = 2
UNIT_ACTIVE = ('active', 'activating', 'deactivating', 'reloading')
RUN_KEYS = ('id', 'mode', 'status', 'target', 'version_before', 'started', 'finished', 'rc', 'timed_out', 'collected',
            'error_markers', 'error_messages', 'msg', 'boot_id')


class WazoUpgrade(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module)
        self.state_path = os.path.join(self.params['state_dir'], runs.STATE_FILE)
        self.output_path = os.path.join(self.params['state_dir'], runs.OUTPUT_FILE)
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
        # Read-only for the configuration: runs in check mode too (the package lists are a cache).
        rc, out, err = self.run([self.bin('apt-get'), 'update', '-q', '-o', 'DPkg::Lock::Timeout=60'])
        if rc != 0:
            self.fail('apt-get update failed (rc=%s): %s' % (rc, (err or out).strip()[-2000:]))

    # --- the detached run ----------------------------------------------------------------------
    def unit_active(self):
        rc, out, err = self.run([self.bin('systemctl'), 'is-active', runs.UNIT + '.service'])
        return out.strip() in UNIT_ACTIVE

    def current_run(self):
        """(record, status) of the last run; the unit is read before the record (see runs.status)."""
        active = self.unit_active()
        try:
            state = runs.read_state(self.state_path)
        except runs.RunStateError as exc:
            self.fail('%s is not a wazo-upgrade run record of this module (%s): remove it if no wazo-upgrade '
                      'runs on this stack' % (self.state_path, exc))
        return state, runs.status(state, active)

    def show_run(self, state, status, attached=False, **extra):
        info = dict((key, state.get(key)) for key in RUN_KEYS)
        info.update(status=status, attached=attached, **extra)
        self.result['run'] = info

    def wait_run(self, state):
        """Wait until the run of ``state`` is no longer running; fail at its bound."""
        deadline = runs.wait_deadline(state, time.time(), self.params['timeout'])
        while True:
            state, status = self.current_run()
            if status != runs.RUNNING:
                return state, status
            self.exit_if_controller_gone()
            if deadline is not None and time.time() >= deadline:
                self.show_run(state, status, attached=True)
                self.fail('wazo-upgrade is still running on this stack: %s; waited until %s. It is not started '
                          'twice: run this task again later to wait for it and get its result (systemctl status %s '
                          'and %s on the stack show where it is).'
                          % (runs.describe(state), runs.utc(deadline), runs.UNIT,
                             self.params['log_path']))
            time.sleep(RUN_POLL)

    def acknowledge(self, run_id):
        """The controller received the result of run ``run_id``: it is not reported again."""
        state = runs.read_state(self.state_path)
        if state is not None and state.get('id') == run_id and state.get('status') in (runs.SUCCEEDED, runs.FAILED):
            if not state.get('collected') and not self.module.check_mode:
                state['collected'] = True
                runs.write_state(self.state_path, state)
            self.show_run(state, state['status'])
        self.module.exit_json(**self.result)

    def exit_if_controller_gone(self):
        """The connection that runs this module is gone (controller killed, SSH cut): stop here."""
        if _controller_gone():
            self.module.exit_json(msg='the connection to the controller is gone: the run is left for a rerun to report',
                                  **self.result)

    def collect(self, wait):
        """Wait for a run still going on and judge a finished one no task reported; its failure fails the
        module. ``wait`` False (check mode): only report what is there."""
        state, status = self.current_run()
        if state is None:
            return
        if not runs.uncollected(state, status == runs.RUNNING):
            self.show_run(state, status)
            return
        if status == runs.FAILED:
            # judged by a task whose result did not reach the controller: report it again
            self.show_run(state, status, attached=True)
            for key in ('errors', 'error_markers'):
                self.result[key] = state.get(key) or []
            self.result['cmd'] = list(state.get('cmd') or [])
            self.fail('%s (reported by a task whose result never reached the controller, %s)'
                      % (state.get('msg') or 'wazo-upgrade failed', runs.describe(state)))
        if not wait:
            found = parse_upgrade_output(runs.read_text(state.get('output') or self.output_path))
            self.show_run(state, status, attached=True, error_markers=found['markers'],
                          error_messages=found['error_messages'])
            return
        if status == runs.RUNNING:
            state, status = self.wait_run(state)
        self.judge(state, status, own=False)

    def start(self, download, installed, target):
        p = self.params
        cmd = [self.bin(p['command'])] + (['-d'] if download else []) + ['-f']
        self.result['cmd'] = cmd
        if not os.path.isdir(p['state_dir']):
            os.makedirs(p['state_dir'], 0o755)
        with open(self.output_path, 'w'):
            pass
        state = runs.new_run('downloaded' if download else 'upgraded', cmd, target, installed, p['timeout'],
                             p['log_path'], runs.log_mark(p['log_path']), _boot_id(), self.output_path)
        state['expected'] = bool(self.params['expected_version'])
        runs.write_state(self.state_path, state)
        argv = runs.systemd_run_argv(self.bin('systemd-run'), _python(), self.state_path, state, UPGRADE_ENV)
        rc, out, err = self.run(argv)
        if rc != 0:
            state.update(status=runs.FAILED, collected=True, msg='not started: %s' % (err or out).strip())
            runs.write_state(self.state_path, state)
            self.fail('could not start %s as the transient unit %s (systemd-run rc=%s): %s'
                      % (' '.join(cmd), runs.UNIT, rc, (err or out).strip()[-1000:]))
        state, status = self.wait_run(state)
        self.judge(state, status, own=True)

    def judge(self, state, status, own):
        """Decide whether the run of ``state`` worked, record the verdict on the stack, report it."""
        p = self.params
        download = state.get('mode') == 'downloaded'
        self.result['cmd'] = list(state.get('cmd') or [])
        self.result['rc'] = state.get('rc')
        output = runs.read_text(state.get('output') or self.output_path)
        appended = runs.log_since(state.get('log_path') or p['log_path'], state.get('log_mark'))
        self.result['log'] = (appended or output).splitlines()

        # The output and the log carry the same lines; parse both in case one of them is missing
        # (a command that does not log, a log that could not be read).
        found = parse_upgrade_output(appended)
        extra = parse_upgrade_output(output)
        for key in ('errors', 'error_markers', 'overwritten_conffiles'):
            src = 'markers' if key == 'error_markers' else key
            self.result[key] = _merge(found[src], extra[src])
        messages = _merge(found['error_messages'], extra['error_messages'])
        if self.result['overwritten_conffiles']:
            self.result['upgrade_warnings'] = _merge(found['warnings'], extra['warnings'])
            for warning in self.result['upgrade_warnings']:
                self.module.warn(warning)

        problems = []
        if status == runs.LOST:
            problems.append('the detached run ended without recording its end: the stack rebooted (boot %s then, '
                            '%s now) or the unit %s was stopped, the upgrade may be half done'
                            % (state.get('boot_id'), _boot_id(), runs.UNIT))
        if state.get('timed_out'):
            problems.append('killed after the %d s timeout (the stack may be half-upgraded)' % state.get('timeout'))
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
            target = state.get('target') or after['candidate']
            if after['installed'] != target:
                problems.append('wazo-platform is at %s, not at %s %s' % (
                    after['installed'], 'the expected' if state.get('expected') else 'the candidate', target))
            self.check_reboot(output + appended)
        problems = [problem for problem in problems if problem]

        name = 'wazo-upgrade -d (download only)' if download else 'wazo-upgrade'
        msg = ''
        if problems:
            msg = '%s failed on this stack%s: %s. Log: %s (this run\'s lines are returned as log).' % (
                name, '' if own else ' in a detached run this task did not start (%s; the connection of the task '
                'that started it was lost)' % runs.describe(state), '; '.join(problems), p['log_path'])
        # Nobody would read the verdict: leave the run unjudged for the rerun to report it.
        self.exit_if_controller_gone()
        state.update(status=runs.FAILED if problems else runs.SUCCEEDED, msg=msg,
                     error_markers=self.result['error_markers'], error_messages=messages, errors=self.result['errors'],
                     reboot_required=self.result.get('reboot_required', False))
        runs.write_state(self.state_path, state)
        self.show_run(state, state['status'], attached=not own)
        if problems:
            self.fail(msg)
        if own and download and _nothing_downloaded(appended or output):
            self.result['changed'] = False

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

    def check_reboot(self, output=''):
        required, packages = reboot_required(os.path.exists(REBOOT_REQUIRED_FILE),
                                             runs.read_text(REBOOT_REQUIRED_PKGS_FILE), output)
        self.result['reboot_required'] = required
        self.result['reboot_required_packages'] = packages
        if required:
            warning = reboot_warning('this stack (%s)' % socket.gethostname(), packages)
            self.result['upgrade_warnings'] = _merge(self.result['upgrade_warnings'], [warning])
            self.module.warn(warning)

    # --- main ----------------------------------------------------------------------------------
    def main(self):
        p = self.params
        check = self.module.check_mode
        if p['state'] == 'collected' and p['acknowledge']:
            self.acknowledge(p['acknowledge'])
        if p['state'] == 'collected':
            self.collect(wait=not check)
            before = self.versions()
            self.result.update(version_before=before['installed'], version_after=before['installed'],
                               candidate=before['candidate'], upgrade_available=before['upgrade_available'])
            self.module.exit_json(**self.result)

        download = p['state'] == 'downloaded'
        if p['update_cache']:
            self.update_cache()
        # A run left by a task whose connection was lost comes first: never two wazo-upgrade at once.
        self.collect(wait=not check)
        before = self.versions()
        installed, candidate = before['installed'], before['candidate']
        self.result.update(version_before=installed, version_after=installed, candidate=candidate,
                           upgrade_available=before['upgrade_available'])
        if installed is None:
            self.fail('wazo-platform is not installed: this is not a Wazo stack')

        expected = p['expected_version']
        if expected:
            if installed == expected:
                if not download:
                    self.check_reboot()
                self.module.exit_json(**self.result)
            if candidate != expected:
                self.fail('wazo-platform %s is installed and apt would install %s, not the expected %s: '
                          'pin the version first (wazo-dist -a wazo-%s)' % (installed, candidate, expected, expected))
        if not before['upgrade_available']:
            self.module.exit_json(**self.result)

        self.result['changed'] = True
        if self.module._diff and not download:
            self.result['diff'] = dict(before='wazo-platform %s\n' % installed, after='wazo-platform %s\n' % candidate)
        if check:
            if not download:
                self.result['version_after'] = candidate
            self.module.exit_json(**self.result)

        self.start(download, installed, expected or candidate)
        self.module.exit_json(**self.result)


def _controller_gone(fd=1):
    """Our stdout, the pipe back to the controller, has no reader any more (POLLERR/POLLHUP)."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        return any(events & (select.POLLERR | select.POLLHUP) for dummy, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _boot_id():
    return runs.read_text('/proc/sys/kernel/random/boot_id').strip() or None


def _python():
    return sys.executable


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
            state=dict(type='str', default='upgraded', choices=['upgraded', 'downloaded', 'collected']),
            acknowledge=dict(type='str'),
            command=dict(type='str', default='wazo-upgrade'),
            log_path=dict(type='path', default='/var/log/wazo-upgrade.log'),
            timeout=dict(type='int', default=7200),
            state_dir=dict(type='path', default='/var/lib/wazo-maintenance'),
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
