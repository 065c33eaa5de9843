# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many sites in one inventory, run by ansible-runner (the engine AWX runs jobs with), on two labs.

Each lab is a site (tests/lab/fleet.py joins their inventories, wazo_mm_site = the lab's name). The playbooks
run unchanged through ansible_runner.run(); the results are read from the runner's artifacts (status, rc,
per-host stats, the fleet report published with set_stats). Failure modes: a batch that waits for the other
site, a failed site that stops the other one (or is not reported), a site split by the batches.

    FLEET_LABS=.lab-s1,.lab-s2 .venv/bin/pytest tests/fleet     (labs made by make lab-up, setup.yml run or not)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

import fleet
import labtools
import upgradelab

LABS = [d for d in os.environ.get('FLEET_LABS', '.lab-s1,.lab-s2').split(',') if d]


@pytest.fixture(scope='module')
def sites(tmp_path_factory):
    dirs = [os.path.join(labtools.ROOT, d) if not os.path.isabs(d) else d for d in LABS]
    if len(dirs) < 2 or not all(os.path.exists(os.path.join(d, 'inventory.yml')) for d in dirs):
        pytest.skip('two labs needed: FLEET_LABS=DIR,DIR (make lab-up with two LAB_NAMEs)')
    out = str(tmp_path_factory.mktemp('fleet'))
    fleet.main([out] + dirs)
    labs = dict((fleet.lab_name(d), upgradelab.UpgradeLab(os.path.join(d, 'inventory.yml'))) for d in dirs)
    return {'inventory': os.path.join(out, 'inventory.yml'), 'labs': labs, 'dir': out}


def run(sites, playbook, tmp_path, **extravars):
    """The playbook through ansible-runner; returns (runner, fleet report from the artifacts)."""
    import ansible_runner
    env = {'ANSIBLE_CONFIG': os.path.join(labtools.ROOT, 'ansible.cfg'),
           'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
           'ANSIBLE_COLLECTIONS_PATH': os.path.join(labtools.ROOT, '.collections')}
    extravars.setdefault('wazo_mm_fleet_report_dir', str(tmp_path / 'reports'))
    extravars.setdefault('wazo_mm_upgrade_report_dir', str(tmp_path / 'reports'))
    private = tmp_path / ('runner-%s' % os.path.basename(playbook))
    private.mkdir(exist_ok=True)
    runner = ansible_runner.run(private_data_dir=str(private), project_dir=labtools.ROOT,
                                playbook=os.path.join(labtools.ROOT, playbook), inventory=sites['inventory'],
                                extravars=extravars, envvars=env, quiet=True, timeout=1500)
    report = None
    for event in runner.events:
        if event.get('event') == 'playbook_on_stats':
            report = (event.get('event_data', {}).get('artifact_data') or {}).get('wazo_mm_fleet_report')
    return runner, report


def output(runner):
    return runner.stdout.read() if hasattr(runner.stdout, 'read') else ''


def by_site(report):
    return dict((line['site'], line) for line in report or [])


def test_setup_of_two_sites_in_one_batch_then_nothing_to_change(sites, tmp_path):
    for lab in sites['labs'].values():
        lab.reset_versions()   # a lab left by an earlier proof in another state (versions, lock) is put back
    runner, report = run(sites, 'setup.yml', tmp_path, wazo_mm_fleet_batch_size=2)
    assert (runner.status, runner.rc) == ('successful', 0), output(runner)[-4000:]
    assert {line['result'] for line in report} == {'succeeded'} and len(report) == 2
    again, _report = run(sites, 'setup.yml', tmp_path, wazo_mm_fleet_batch_size=2)
    assert again.rc == 0
    assert again.stats['changed'] == {}, again.stats['changed']


def test_upgrade_of_two_sites_under_load_drops_no_call(sites, tmp_path):
    labs = sites['labs']
    for lab in labs.values():
        lab.reset_versions()
    loads = {}
    for name, lab in labs.items():
        loads[name] = upgradelab.Load(lab, tmp_path / ('load-' + name))
        loads[name].start(rate=5, calls=1500, min_ms=2000, max_ms=20000)
    try:
        for load in loads.values():
            load.wait_created(60, 60)
        runner, report = run(sites, 'upgrade.yml', tmp_path, wazo_mm_fleet_batch_size=2)
    finally:
        results = dict((name, load.stop()) for name, load in loads.items())
    assert (runner.status, runner.rc) == ('successful', 0), output(runner)[-4000:]
    for name, result in results.items():
        assert result['failed'] == 0, (name, result)
        assert result['created'] >= 100, (name, result)
    lines = by_site(report)
    for name, lab in labs.items():
        assert lab.version('primary') == lab.version('secondary') == upgradelab.LAST
        assert lines[name]['result'] == 'succeeded'
        assert (lines[name]['before'], lines[name]['after']) == (upgradelab.FIRST, upgradelab.LAST)
        assert lines[name]['calls_drained'] is not None
        assert os.path.exists(tmp_path / 'reports' / name / ('upgrade-%s.json' % upgradelab.LAST))
    text = (tmp_path / 'reports' / 'fleet-upgrade.txt').read_text()
    assert '2 site(s): 2 succeeded' in text


def test_a_failed_site_stops_alone_and_the_next_batch_does_not_start(sites, tmp_path):
    labs = sites['labs']
    names = list(labs)
    for lab in labs.values():
        lab.reset_versions()
    first, second = names
    # the first site's secondary upgrade fails (the stand-in's apt fails after the stop)
    labs[first].ssh('secondary', 'echo "E: injected by the fleet proof" > /etc/wazo-standin/fail-next-upgrade')
    # one site per batch, no failure allowed: the second site must not start
    runner, report = run(sites, 'upgrade.yml', tmp_path, wazo_mm_fleet_batch_size=1)
    lines = by_site(report)
    assert runner.rc != 0 and runner.status == 'failed'
    assert lines[first]['result'] == 'failed'
    assert lines[second]['result'] == 'stopped'
    assert 'not started: 1 of 2 site(s) failed' in lines[second]['reason']
    # the failed site: back in normal mode on its primary, still on the first version
    assert labs[first].route_mode()['mode'] == 'normal'
    assert labs[first].version('primary') == upgradelab.FIRST
    # the site that did not start: untouched
    assert labs[second].version('primary') == labs[second].version('secondary') == upgradelab.FIRST
    assert labs[second].route_mode()['lock'] in (None, {}, '')

    # the same fault, both sites in one batch: the other site of the batch goes on and is upgraded
    labs[first].reset_versions()
    labs[first].ssh('secondary', 'echo "E: injected by the fleet proof" > /etc/wazo-standin/fail-next-upgrade')
    runner, report = run(sites, 'upgrade.yml', tmp_path, wazo_mm_fleet_batch_size=2)
    lines = by_site(report)
    assert runner.rc != 0
    assert lines[first]['result'] == 'failed'
    assert lines[second]['result'] == 'succeeded', output(runner)[-3000:]
    assert labs[second].version('primary') == labs[second].version('secondary') == upgradelab.LAST
    assert labs[first].version('primary') == upgradelab.FIRST
    labs[first].reset_versions()
