# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A wazo-upgrade run detached from the SSH connection that started it.

An upgrade that dies with its SSH connection leaves a stack half-upgraded with every Wazo service
stopped. So ``wazo.maintenance_mode.wazo_upgrade`` never runs ``wazo-upgrade`` as its own child: it
starts it as a transient systemd service (``systemd-run --unit=wazo-mm-upgrade --collect``), whose
runner (:func:`_runner`, sent with ``python3 -c``) waits for the command, kills it after its time
limit, and writes its end (exit code, time, killed or not) into the run's state file on the stack:

``<state_dir>/upgrade-run.json``
    ``{id, unit, mode, cmd, target, version_before, started, started_ts, timeout, boot_id, log_path,
    log_mark, output, status, rc, timed_out, finished, collected, verdict...}``
``<state_dir>/upgrade-run.out``
    the command's output (stdout and stderr).

``status`` goes ``running`` (written by the module before the start) → ``finished`` (written by the
runner) → ``succeeded`` or ``failed`` (written by the module that judged it, with the error markers and
the message). A ``running`` record whose unit is no longer active is ``lost``: the runner was killed (the
stack rebooted, ``systemctl stop wazo-mm-upgrade``) before it could write the end.

``collected`` is set only by the controller's acknowledgement (``state=collected acknowledge=<id>``, sent
after it received the result): the module that judged a run cannot know that its result reached anyone (a
killed ``ansible-playbook`` leaves its module running on the stack while Ansible's SSH ControlMaster keeps
the channel open). So a failed run is reported by every call until it is acknowledged; then the next call
starts a new run, as after any reported failure.

One unit name: systemd itself refuses a second run while one is active. A module that finds a run still
active waits for it; one that finds a finished run nobody judged yet judges and reports it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import inspect
import json
import os
import time

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._atomic import atomic_write

UNIT = 'wazo-mm-upgrade'
STATE_FILE = 'upgrade-run.json'
OUTPUT_FILE = 'upgrade-run.out'

RUNNING = 'running'
FINISHED = 'finished'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
LOST = 'lost'
NONE = 'none'

# Seconds the runner gives the command between SIGTERM and SIGKILL after its time limit.
KILL_AFTER = 60
# Seconds a module waits beyond a run's own time limit before it gives up on it (the runner kills the
# command at the limit, then writes its end within KILL_AFTER).
WAIT_MARGIN = KILL_AFTER + 60
LOG_TAIL_BYTES = 4096


class RunStateError(Exception):
    """The state file is there but is not a run record of ours."""


def parse_state(text):
    """``upgrade-run.json`` as a dict; None or empty text gives None."""
    if not text or not text.strip():
        return None
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise RunStateError('not JSON (%s)' % exc)
    if not isinstance(state, dict) or 'id' not in state or 'status' not in state:
        raise RunStateError('not a wazo-upgrade run record: %r' % (text[:200],))
    return state


def read_state(path):
    try:
        with open(path) as handle:
            return parse_state(handle.read())
    except (IOError, OSError):
        return None


def write_state(path, state):
    """Atomic write (the runner, which runs without the collection, does the same by hand)."""
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True) + '\n')


def status(state, unit_active):
    """What a run record says, given whether its unit is active now.

    Read the unit first, then the record: a run that ends between the two reads is then seen as
    ``finished``, never as ``lost``.
    """
    if state is None:
        return NONE
    recorded = state.get('status')
    if recorded == RUNNING:
        return RUNNING if unit_active else LOST
    return recorded


def uncollected(state, unit_active):
    """The run of this record needs waiting for, judging or reporting: running, finished, lost, or failed and
    not acknowledged."""
    if not state or state.get('collected'):
        return False
    return status(state, unit_active) in (RUNNING, FINISHED, LOST, FAILED)


def utc(timestamp):
    """``2026-01-10T02:00:01Z``."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))


def new_run(mode, cmd, target, version_before, timeout, log_path, log_mark, boot_id, output, now=None):
    now = time.time() if now is None else now
    return {
        'id': '%d-%d' % (int(now * 1000), os.getpid()),
        'unit': UNIT,
        'mode': mode,
        'cmd': list(cmd),
        'target': target,
        'version_before': version_before,
        'started': utc(now),
        'started_ts': now,
        'timeout': timeout,
        'boot_id': boot_id,
        'log_path': log_path,
        'log_mark': log_mark,
        'output': output,
        'status': RUNNING,
        'rc': None,
        'timed_out': False,
        'finished': None,
        'collected': False,
    }


def wait_deadline(state, now, own_timeout):
    """Until when a module waits for ``state``'s run: its start + its time limit + the margin; a run
    without a limit is waited for ``own_timeout`` seconds from now (0: forever, None returned)."""
    if state.get('timeout'):
        return float(state.get('started_ts') or now) + float(state['timeout']) + WAIT_MARGIN
    if own_timeout:
        return now + own_timeout
    return None


def _runner(argv):  # pragma: no cover - runs on the stack, out of the module (tests run it as a process)
    """The detached run: ``STATE_PATH RUN_ID OUTPUT TIMEOUT KILL_AFTER CMD...``. Self-contained: its source
    is sent with ``python3 -c``."""
    import json as _json
    import os as _os
    import signal as _signal
    import subprocess as _subprocess
    import time as _time

    state_path, run_id, output, limit, kill_after = argv[:5]
    cmd = argv[5:]
    limit, kill_after = float(limit), float(kill_after)
    timed_out = False
    with open(output, 'ab', buffering=0) as out:
        try:
            proc = _subprocess.Popen(cmd, stdin=_subprocess.DEVNULL, stdout=out, stderr=_subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as exc:
            out.write(('cannot run %s: %s\n' % (cmd[0], exc)).encode('utf-8'))
            proc, rc = None, 127
        if proc is not None:
            try:
                rc = proc.wait(timeout=limit or None)
            except _subprocess.TimeoutExpired:
                timed_out = True
                _os.killpg(proc.pid, _signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=kill_after)
                except _subprocess.TimeoutExpired:
                    _os.killpg(proc.pid, _signal.SIGKILL)
                    rc = proc.wait()
    with open(state_path) as handle:
        state = _json.load(handle)
    if state.get('id') != run_id:
        return 0  # another run's record now: leave it alone
    state.update(status='finished', rc=rc, timed_out=timed_out, finished_ts=_time.time(),
                 finished=_time.strftime('%Y-%m-%dT%H:%M:%SZ', _time.gmtime()))
    tmp = state_path + '.tmp'
    with open(tmp, 'w') as handle:
        _json.dump(state, handle, indent=1, sort_keys=True)
        handle.write('\n')
        handle.flush()
        _os.fsync(handle.fileno())
    _os.rename(tmp, state_path)
    return 0


def runner_code():
    """The Python source ``python3 -c`` runs on the stack (the runner above, then its call)."""
    return inspect.getsource(_runner) + '\nimport sys\nsys.exit(_runner(sys.argv[1:]))\n'


def systemd_run_argv(systemd_run, python, state_path, state, environ):
    """``systemd-run`` argv that starts ``state``'s run as the transient service ``state['unit']``."""
    argv = [systemd_run, '--unit=%s' % state['unit'], '--collect', '--quiet', '--property=Type=exec',
            '--description=wazo-upgrade started by wazo.maintenance_mode (%s)' % state['id']]
    for name in sorted(environ):
        argv.append('--setenv=%s=%s' % (name, environ[name]))
    argv += ['--', python, '-c', runner_code(), state_path, state['id'], state['output'],
             str(int(state['timeout'] or 0)), str(KILL_AFTER)] + list(state['cmd'])
    return argv


def describe(state):
    """``wazo-upgrade -f (run 123-4, started 2026-01-10T02:00:01Z, unit wazo-mm-upgrade)``."""
    cmd = ' '.join(os.path.basename(state['cmd'][0]) if i == 0 else a for i, a in enumerate(state.get('cmd') or ['?']))
    return '%s (run %s, started %s, unit %s)' % (cmd, state.get('id'), state.get('started'), state.get('unit', UNIT))


# --- the wazo-upgrade log: what a run appended ----------------------------------------------------------------
def log_mark(path):
    """Where the log ends now, JSON-able: ``{inode, size, tail}`` (tail: base64 of the last bytes); None
    when there is no log yet."""
    try:
        with open(path, 'rb') as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            tail = handle.read(LOG_TAIL_BYTES)
            return {'inode': os.fstat(handle.fileno()).st_ino, 'size': size,
                    'tail': base64.b64encode(tail).decode('ascii')}
    except (IOError, OSError):
        return None


def log_since(path, mark):
    """What was appended to the log after ``mark`` (all of it if the log was created or replaced meanwhile)."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
            inode = os.fstat(handle.fileno()).st_ino
    except (IOError, OSError):
        return ''
    if mark:
        tail = base64.b64decode(mark.get('tail') or '')
        size = mark.get('size', 0)
        if inode == mark.get('inode') and data[size - len(tail):size] == tail:
            data = data[size:]
    return data.decode('utf-8', 'replace')


def read_text(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return ''
