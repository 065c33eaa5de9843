# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml is a valid ansible-builder v3 definition whose build context installs this collection
(the tarball `ansible-galaxy collection build` makes), the collections galaxy.yml depends on (same constraints),
the ansible-core and paramiko the collection is tested with, and ansible-runner (the engine AWX runs jobs with).

`ansible-builder create` writes the context without reaching a registry; building the image needs the base image
from its registry, which this machine cannot reach (see execution-environment.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


def pinned(requirements, name):
    for line in open(os.path.join(ROOT, requirements)).read().splitlines():
        if line.split('==')[0].split('[')[0].strip() == name:
            return line.split('==')[1].strip()
    raise AssertionError('%s not pinned in %s' % (name, requirements))


@pytest.fixture(scope='module')
def context(tmp_path_factory):
    if not os.path.exists(os.path.join(BIN, 'ansible-builder')):
        pytest.skip('ansible-builder is not in this venv (make venv)')
    work = tmp_path_factory.mktemp('ee')
    src = work / 'src'
    shutil.copytree(ROOT, str(src), symlinks=True, ignore=shutil.ignore_patterns(
        '.venv', '.git', '.lab*', '.build', '.cache', '.collections', 'tests', 'bench', 'upgrade-reports', '*.pyc'))
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(src / '.build')],
                   cwd=str(src), check=True, capture_output=True)
    tarball = next((src / '.build').glob('wazo-maintenance_mode-*.tar.gz'))
    (src / '.build' / 'ee-src').mkdir()
    shutil.copy(str(tarball), str(src / '.build' / 'ee-src' / 'wazo-maintenance_mode.tar.gz'))
    proc = subprocess.run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', 'execution-environment.yml',
                           '-c', str(work / 'ee')], cwd=str(src), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / 'ee'


def test_the_context_installs_this_collection(context):
    with tarfile.open(str(context / '_build' / 'collection' / 'wazo-maintenance_mode.tar.gz')) as tar:
        manifest = json.load(tar.extractfile('MANIFEST.json'))['collection_info']
    assert (manifest['namespace'], manifest['name']) == ('wazo', 'maintenance_mode')
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())['collections']
    assert {'name': '/build/collection/wazo-maintenance_mode.tar.gz', 'type': 'file'} in requirements
    containerfile = (context / 'Containerfile').read_text()
    assert 'COPY _build /build' in containerfile and 'ansible-galaxy collection install' in containerfile


def test_the_dependencies_are_galaxy_yml_s(context):
    galaxy = yaml.safe_load(open(os.path.join(ROOT, 'galaxy.yml')))['dependencies']
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())['collections']
    named = {r['name']: r.get('version') for r in requirements if r.get('type') != 'file'}
    assert named == galaxy


def test_ansible_core_runner_and_python_as_tested(context):
    containerfile = (context / 'Containerfile').read_text()
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile).group(1).split()
    core = [r for r in refs if r.startswith('ansible-core==')]
    assert core and core[0].split('==')[1].startswith('2.19.'), refs
    assert 'ansible-runner==%s' % pinned('requirements.txt', 'ansible-runner') in refs
    python = (context / '_build' / 'requirements.txt').read_text().split()
    assert 'paramiko==%s' % pinned('requirements.txt', 'paramiko') in python
    assert 'openssh-clients [platform:rpm]' in (context / '_build' / 'bindep.txt').read_text()
