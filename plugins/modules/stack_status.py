#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: stack_status
short_description: Read a Wazo stack's state for the status report - calls, voicemail share, CEL and BLF links, replication
version_added: "0.2.0"
description:
  - Runs on a Wazo stack (primary or secondary). Reads, and changes nothing.
  - Asterisk's live channels and calls (C(core show channels count)) and the age of its oldest channel
    (C(core show channels concise)).
  - The voicemail share (C(findmnt) on O(voicemail_dir)).
  - The CEL link to the peer stack (C(odbc show <dsn>), its active connections, and C(cel show status), CEL
    logging enabled with the ODBC CEL backend subscribed).
  - The BLF/MWI link to the peer (Asterisk 22 has no CLI for the outbound-publish clients, C(pjsip list
    outbound-publishes) does not exist) - the publish modules running, the peer endpoint the blf_sync role
    writes loaded (C(pjsip show endpoint <peer>)), and the peer answering a SIP OPTIONS on udp/5060. The result
    says that this is what it is based on.
  - With O(replication) (on the primary), the traces of the DB replication to the secondary that a real Wazo
    leaves - the HA cron file (active, commented by an upgrade, missing), the last time cron started
    C(xivo-master-slave-db-replication) (its journal; the cron sends the script's output to C(/dev/null)), the
    files the script leaves in C(/tmp) (C(out_master_backup.sql), and C(out_slave_check.sql), which it removes
    on success), and the marker the ha role writes after its first sync.
  - A part that cannot be read is reported in the result (C(error) keys), never a failure.
author:
  - wazo.maintenance_mode contributors (@wazo-platform)
options:
  asterisk_path:
    description: The C(asterisk) binary, a name looked up in E(PATH) (and C(/usr/sbin)) or an absolute path.
    type: str
    default: asterisk
  timeout:
    description: Seconds each command may take (a wedged Asterisk can block its CLI).
    type: int
    default: 20
  voicemail_dir:
    description: The voicemail spool the share is mounted on.
    type: path
    default: /var/spool/asterisk/voicemail
  cel_dsn:
    description: The res_odbc connection to the peer's database (the cel_odbc role names it after the peer's group). Empty skips the CEL check.
    type: str
    default: ''
  blf_peer_endpoint:
    description: The PJSIP endpoint of the peer (the blf_sync role names it after the peer). Empty skips the BLF check.
    type: str
    default: ''
  peer_address:
    description: The peer stack's SIP address (probed with a SIP OPTIONS for the BLF check). Empty skips the probe.
    type: str
    default: ''
  peer_port:
    description: The peer's SIP port.
    type: int
    default: 5060
  replication:
    description: Read the DB replication's traces (on the primary).
    type: bool
    default: false
  replication_cron_file:
    description: The HA cron file of the primary.
    type: path
    default: /etc/cron.d/xivo-ha-master
  replication_work_dir:
    description: The directory the replication script works in.
    type: path
    default: /tmp
  sync_marker:
    description: The file the ha role writes after the first sync (its content is the secondary's address).
    type: path
    default: /var/lib/wazo-maintenance/ha-synchronized-to
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: posix
    description: A Wazo stack (Debian, systemd).
seealso:
  - module: wazo.maintenance_mode.active_calls
  - module: wazo.maintenance_mode.proxy_status
'''

EXAMPLES = r'''
- name: Read the primary's state
  wazo.maintenance_mode.stack_status:
    cel_dsn: secondary
    blf_peer_endpoint: instance2
    peer_address: 10.0.0.12
    replication: true
  register: stack
'''

RETURN = r'''
asterisk:
  description:
    - C(running), C(channels), C(calls), C(longest_call_seconds) (the oldest channel's age, null without a channel),
      C(error) (why Asterisk could not be read).
  returned: always
  type: dict
  sample: {running: true, channels: 2, calls: 1, longest_call_seconds: 74, error: null}
voicemail:
  description: C(path), C(mounted), C(source), C(fstype), C(options) of the voicemail share.
  returned: always
  type: dict
  sample: {path: /var/spool/asterisk/voicemail, mounted: true, source: "10.0.0.10:/voicemail", fstype: nfs4}
cel:
  description:
    - C(dsn), C(ok) (at least one active connection and the ODBC CEL backend subscribed), C(connections),
      C(max_connections), C(backend), C(detail); null when not checked.
  returned: always
  type: dict
  sample: {dsn: secondary, ok: true, connections: 1, max_connections: 1, backend: true, detail: "secondary 1/1 connection(s)"}
blf:
  description: C(ok), C(modules) (running), C(endpoint) (loaded), C(peer_answers) (SIP OPTIONS), C(detail), C(based_on); null when not checked.
  returned: always
  type: dict
replication:
  description:
    - C(cron) (V(active), V(paused), V(missing)), C(cron_last_run) (UTC ISO time from the journal or null),
      C(script_files) (C(last_run), C(result), C(detail) from the script's files), C(sync_marker) (C(path),
      C(content), C(mtime)); null without O(replication).
  returned: always
  type: dict
'''

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.command import CommandRunner
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import (
    AsteriskNotRunning,
    AsteriskOutputError,
    parse_channels_count,
)
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.status_report import iso

REPLICATION_SCRIPT = 'xivo-master-slave-db-replication'
_ODBC_ACTIVE = re.compile(r'Number of active connections:\s*(\d+)(?:\s*\(out of (\d+)\))?')
_HMS = re.compile(r'^(\d+):(\d{2}):(\d{2})$')


def parse_concise_durations(text):
    """Seconds of each channel of ``core show channels concise`` (12th ``!`` field, seconds or HH:MM:SS)."""
    out = []
    for line in text.splitlines():
        fields = line.split('!')
        if len(fields) < 12:
            continue
        value = fields[11].strip()
        match = _HMS.match(value)
        if match:
            out.append(int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3)))
        elif value.isdigit():
            out.append(int(value))
    return out


def parse_odbc_show(text, dsn):
    """``odbc show <dsn>`` -> (active connections, max) of that DSN's section, (None, None) when absent."""
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('Name:'):
            section = stripped.split(':', 1)[1].strip()
            continue
        match = _ODBC_ACTIVE.search(stripped)
        if match and section == dsn:
            return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)
    return None, None


class Stack(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.runner = CommandRunner(module)
        self.asterisk = module.get_bin_path(self.p['asterisk_path'], opt_dirs=['/usr/sbin', '/sbin'])

    def rx(self, command):
        """(ok, output): asterisk -rx; ok False when Asterisk cannot be reached or the CLI did not answer."""
        if not self.asterisk:
            return False, '%s not found' % self.p['asterisk_path']
        res = self.runner.run([self.asterisk, '-rx', command], timeout=self.p['timeout'])
        text = res.out + '\n' + res.err
        if res.timed_out:
            return False, 'asterisk -rx %r did not answer within %d s' % (command, self.p['timeout'])
        if 'Unable to connect to remote asterisk' in text or 'asterisk.ctl exist' in text:
            return False, text.strip()[:300]
        return True, res.out

    def read_asterisk(self):
        out = {'running': None, 'channels': None, 'calls': None, 'longest_call_seconds': None, 'error': None}
        ok, text = self.rx('core show channels count')
        try:
            if not ok:
                raise AsteriskNotRunning(text)
            out.update(parse_channels_count(text))
            out.pop('processed', None)
            out['running'] = True
        except AsteriskNotRunning as exc:
            out.update(running=False, error=str(exc)[:300])
            return out
        except AsteriskOutputError as exc:
            out['error'] = str(exc)[:300]
            return out
        ok, text = self.rx('core show channels concise')
        if ok:
            durations = parse_concise_durations(text)
            out['longest_call_seconds'] = max(durations) if durations else None
        return out

    def read_voicemail(self):
        path = self.p['voicemail_dir']
        out = {'path': path, 'mounted': False, 'source': None, 'fstype': None, 'options': None}
        findmnt = self.module.get_bin_path('findmnt')
        if not findmnt:
            out['error'] = 'findmnt not found'
            return out
        res = self.runner.run([findmnt, '-J', '-M', path, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS'],
                              timeout=self.p['timeout'])
        if res.rc == 0 and res.out.strip():
            try:
                fs = (json.loads(res.out).get('filesystems') or [{}])[0]
                out.update(mounted=True, source=fs.get('source'), fstype=fs.get('fstype'), options=fs.get('options'))
            except ValueError:
                out['error'] = 'findmnt: %s' % res.out[:200]
        return out

    def read_cel(self):
        dsn = self.p['cel_dsn']
        if not dsn:
            return None
        ok, text = self.rx('odbc show %s' % dsn)
        if not ok:
            return {'dsn': dsn, 'ok': False, 'connections': None, 'max_connections': None,
                    'detail': 'Asterisk not readable'}
        active, most = parse_odbc_show(text, dsn)
        if active is None:
            return {'dsn': dsn, 'ok': False, 'connections': None, 'max_connections': None, 'backend': None,
                    'detail': 'no ODBC connection %s in Asterisk' % dsn}
        ok, text = self.rx('cel show status')
        backend = ok and 'CEL Logging: Enabled' in text and 'ODBC CEL backend' in text
        detail = '%s %d/%s connection(s)' % (dsn, active, most if most is not None else '?')
        if not backend:
            detail += ', CEL logging off or no ODBC CEL backend (cel show status)'
        return {'dsn': dsn, 'ok': active > 0 and backend, 'connections': active, 'max_connections': most,
                'backend': backend, 'detail': detail}

    def read_blf(self):
        peer = self.p['blf_peer_endpoint']
        if not peer:
            return None
        out = {'ok': False, 'modules': None, 'endpoint': None, 'peer_answers': None, 'detail': '',
               'based_on': 'publish modules running, peer endpoint loaded, peer answers SIP OPTIONS '
                           '(Asterisk 22 shows no outbound-publish state)'}
        ok, text = self.rx('module show like res_pjsip_')
        if not ok:
            out['detail'] = 'Asterisk not readable'
            return out
        running = [m for m in ('res_pjsip_outbound_publish.so', 'res_pjsip_publish_asterisk.so')
                   if re.search(r'^%s\s.*\bRunning\b' % re.escape(m), text, re.M)]
        out['modules'] = len(running) == 2
        ok, text = self.rx('pjsip show endpoint %s' % peer)
        out['endpoint'] = ok and bool(re.search(r'^\s*Endpoint:\s+%s\b' % re.escape(peer), text, re.M))
        if self.p['peer_address']:
            out['peer_answers'] = self.probe(self.p['peer_address'], self.p['peer_port'])
        missing = [what for what, flag in (('publish modules not running', out['modules']),
                                           ('endpoint %s not loaded' % peer, out['endpoint']),
                                           ('peer does not answer SIP', out['peer_answers']))
                   if flag is False]
        out['ok'] = not missing
        out['detail'] = '; '.join(missing) or 'endpoint %s%s' % (peer, ', peer answers SIP'
                                                                 if out['peer_answers'] else '')
        return out

    def probe(self, host, port):
        # Imported here: the prober is only needed when a peer address is given.
        from ansible_collections.wazo.maintenance_mode.plugins.module_utils.sip_options import OptionsProber
        target = (host, port)
        prober = OptionsProber([target], 1.0)
        try:
            return bool(prober.probe()[target].ok)
        except Exception:  # pylint: disable=broad-except
            return False
        finally:
            prober.close()

    def read_replication(self):
        if not self.p['replication']:
            return None
        out = {'cron': 'missing', 'cron_last_run': None, 'script_files': None, 'sync_marker': None}
        try:
            with open(self.p['replication_cron_file']) as handle:
                lines = [line.strip() for line in handle if REPLICATION_SCRIPT in line]
            if any(not line.startswith('#') for line in lines):
                out['cron'] = 'active'
            elif lines:
                out['cron'] = 'paused'
        except (IOError, OSError):
            pass
        journalctl = self.module.get_bin_path('journalctl')
        if journalctl:
            res = self.runner.run([journalctl, '-u', 'cron.service', '-o', 'json', '--no-pager', '-n', '20000'],
                                  timeout=self.p['timeout'])
            for line in reversed(res.out.splitlines()):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                msg = rec.get('MESSAGE')
                if isinstance(msg, str) and 'CMD' in msg and REPLICATION_SCRIPT in msg:
                    try:
                        out['cron_last_run'] = iso(int(rec['__REALTIME_TIMESTAMP']) / 1e6)
                    except (KeyError, TypeError, ValueError):
                        pass
                    break
        work = self.p['replication_work_dir']
        master = self._mtime(os.path.join(work, 'out_master_backup.sql'))
        check = self._mtime(os.path.join(work, 'out_slave_check.sql'))
        backup = self._mtime(os.path.join(work, 'out_slave_backup.sql'))
        if master or backup:
            if check and master and check >= master:
                res, detail = 'failed', 'out_slave_check.sql kept: the md5 of the two dumps did not match'
            elif backup and (not master or backup > master + 1):
                res, detail = 'failed', 'the last run stopped before dumping the master (secondary down?)'
            else:
                res, detail = 'succeeded', 'out_master_backup.sql written, the check dump removed'
            out['script_files'] = {'last_run': iso(max(t for t in (master, backup) if t)), 'result': res,
                                   'detail': detail}
        marker = self.p['sync_marker']
        mtime = self._mtime(marker)
        if mtime:
            try:
                with open(marker) as handle:
                    content = handle.read().strip()
            except (IOError, OSError):
                content = None
            out['sync_marker'] = {'path': marker, 'content': content, 'mtime': iso(mtime)}
        return out

    @staticmethod
    def _mtime(path):
        try:
            return os.stat(path).st_mtime
        except OSError:
            return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            asterisk_path=dict(type='str', default='asterisk'),
            timeout=dict(type='int', default=20),
            voicemail_dir=dict(type='path', default='/var/spool/asterisk/voicemail'),
            cel_dsn=dict(type='str', default=''),
            blf_peer_endpoint=dict(type='str', default=''),
            peer_address=dict(type='str', default=''),
            peer_port=dict(type='int', default=5060),
            replication=dict(type='bool', default=False),
            replication_cron_file=dict(type='path', default='/etc/cron.d/xivo-ha-master'),
            replication_work_dir=dict(type='path', default='/tmp'),
            sync_marker=dict(type='path', default='/var/lib/wazo-maintenance/ha-synchronized-to'),
        ),
        supports_check_mode=True,
    )
    stack = Stack(module)
    module.exit_json(changed=False, asterisk=stack.read_asterisk(), voicemail=stack.read_voicemail(),
                     cel=stack.read_cel(), blf=stack.read_blf(), replication=stack.read_replication())


if __name__ == '__main__':
    main()
