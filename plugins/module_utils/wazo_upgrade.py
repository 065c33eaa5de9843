# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for what a Wazo stack prints around an upgrade.

Formats come from wazo-platform/wazo-upgrade (``bin/wazo-upgrade``, ``bin/real-wazo-upgrade``,
``bin/wazo-check-conffiles``), wazo-platform/wazo-service and iptables. The ``wazo-upgrade``
wrapper pipes everything through ``tee`` and exits 0 even when the upgrade failed: success is
decided from these markers, never from its exit code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# The regex real-wazo-upgrade itself applies to `LANG=C apt-cache policy wazo-platform`.
VERSION_RE = re.compile(r'[0-9]{2}\.[0-9]+(\.[0-9]+)?')

DEFAULT_LOG_PATH = '/var/log/wazo-upgrade.log'

# fatal_error() in real-wazo-upgrade
MARKER_ERROR_BANNER = '******************* ERROR *************************'
MARKER_ERROR_OCCURRED = 'An error occurred during the upgrade.'
# check_wizard_has_been_run() / is_wazo_configured()
MARKER_WIZARD = 'ERROR: You must configure Wazo by running the wizard'
MARKER_CONFD_DOWN = 'ERROR: wazo-confd is not running'
# the wrapper's mirror checks
MARKER_NO_DEBIAN_REPO = 'Could not find any Debian repository'
MARKER_NO_WAZO_REPO = 'Could not find any Wazo repository'
# wazo-check-conffiles
MARKER_CONFFILES = 'WARNING: The following configuration files were overwritten during the upgrade:'

# A reboot after the upgrade. wazo-upgrade prints nothing about it: Debian's packages say it in
# /var/run/reboot-required (touched by the kernel's postinst hook and by notify-reboot-required), with the
# packages that asked, one a line, in /var/run/reboot-required.pkgs; wazo-dist-upgrade (a Debian-major
# upgrade) ends with this notice.
REBOOT_REQUIRED_FILE = '/var/run/reboot-required'
REBOOT_REQUIRED_PKGS_FILE = '/var/run/reboot-required.pkgs'
MARKER_RESTART = 'You must RESTART the machine before using Wazo again.'

# Lines that, on their own, mean the upgrade failed. The `Error: <msg>` line of fatal_error is
# matched separately (only inside an ERROR banner, so that a package's chatter cannot trip it).
ERROR_MARKERS = (
    MARKER_ERROR_BANNER,
    MARKER_ERROR_OCCURRED,
    MARKER_WIZARD,
    MARKER_CONFD_DOWN,
    MARKER_NO_DEBIAN_REPO,
    MARKER_NO_WAZO_REPO,
)
_ERROR_DETAIL_RE = re.compile(r'^\s*Error: (?P<msg>.*\S)\s*$')
# apt's error lines (apt-get -d dist-upgrade failing in download mode only prints these)
MARKER_APT_ERROR = 'E:'
_APT_ERROR_RE = re.compile(r'^E: \S')
# real-wazo-upgrade getopts: "<prog> : option X is not valid"
_BAD_OPTION_RE = re.compile(r'^\S*wazo-upgrade : option (?P<opt>\S*) is not valid')

# The wrapper's log banners (append_log_start / append_log_end).
LOG_START_RE = re.compile(r'^wazo-upgrade started at (?P<at>\S+)\s*$')
LOG_STOP_RE = re.compile(r'^wazo-upgrade stopped at (?P<at>\S+)\s*$')

# wazo-service status exit codes (wazo-platform/wazo-service wazo_service/main.py)
SERVICES_STATUS = {0: 'running', 1: 'stopped', 2: 'failed'}

# What `wazo-service stop` inserts: iptables -I INPUT 1 -p udp --dport 5060 -j DROP
_IPTABLES_S_RULE_RE = re.compile(r'^-A\s+INPUT\s+(?P<spec>.*)$')
_IPTABLES_L_HEADER_RE = re.compile(r'^\s*(?:pkts\s+bytes\s+)?target\s+prot\s+opt\s+in\s+out\s+source\s+destination')


class WazoVersionError(Exception):
    """apt-cache policy did not say what wazo-platform version is installed."""


def version_tuple(version):
    """``'24.05'`` -> ``(24, 5)``, ``'25.03.1'`` -> ``(25, 3, 1)``; None stays None."""
    if version is None:
        return None
    return tuple(int(part) for part in version.split('.'))


def _policy_field(text, field):
    # Same as `grep <field> | grep -oE <regex> | head -n1`, restricted to the "<field>:" line so
    # that a version table entry can never be read by mistake.
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(field + ':'):
            value = stripped[len(field) + 1:].strip()
            match = VERSION_RE.search(value)
            return match.group(0) if match else None
    return None


def parse_apt_policy(text, package='wazo-platform'):
    """Parse ``LANG=C apt-cache policy wazo-platform``.

    Returns ``{'installed', 'candidate', 'upgrade_available'}``; a version is None when apt says
    ``(none)``. Raises WazoVersionError when the package is unknown to apt (no output, or no
    Installed/Candidate lines).
    """
    text = text or ''
    if not re.search(r'^\s*Installed:', text, re.M) or not re.search(r'^\s*Candidate:', text, re.M):
        raise WazoVersionError('apt-cache policy knows no %s package: %r' % (package, text.strip()[:300]))
    installed = _policy_field(text, 'Installed')
    candidate = _policy_field(text, 'Candidate')
    return {
        'installed': installed,
        'candidate': candidate,
        'upgrade_available': is_upgrade_available(installed, candidate),
    }


def is_upgrade_available(installed, candidate):
    """True when apt would install a newer wazo-platform (what real-wazo-upgrade compares)."""
    if candidate is None:
        return False
    if installed is None:
        return True
    return version_tuple(candidate) > version_tuple(installed)


def parse_upgrade_output(text):
    """Find wazo-upgrade's error markers and the overwritten-conffiles warning.

    Returns ``{'errors': [...], 'error_messages': [...], 'markers': [...],
    'overwritten_conffiles': [...], 'warnings': [...]}``:

    - ``markers``: the distinct error markers found, in first-seen order;
    - ``errors``: every line that carries an error marker (or fatal_error's ``Error: <msg>``);
    - ``error_messages``: the ``<msg>`` of each ``Error: <msg>`` inside an ERROR banner;
    - ``overwritten_conffiles``: the files listed after the wazo-check-conffiles warning;
    - ``warnings``: one human-readable line per warning.
    """
    errors = []
    markers = []
    error_messages = []
    conffiles = []
    warnings = []
    in_banner = False
    in_conffiles = None  # None: not in the list; False: before the first file; True: in the list
    for raw in (text or '').splitlines():
        line = raw.rstrip()
        stripped = line.strip()

        if in_conffiles is not None:
            if not stripped:
                if in_conffiles:
                    in_conffiles = None  # blank line after the list: end of it
                continue
            if stripped.startswith('/'):
                in_conffiles = True
                if stripped not in conffiles:
                    conffiles.append(stripped)
                continue
            in_conffiles = None

        if MARKER_CONFFILES in line:
            in_conffiles = False
            if MARKER_CONFFILES not in warnings:
                warnings.append(MARKER_CONFFILES)
            continue

        found = [m for m in ERROR_MARKERS if m in line]
        if MARKER_ERROR_BANNER in line:
            in_banner = not in_banner
        detail = _ERROR_DETAIL_RE.match(line)
        if detail and in_banner:
            error_messages.append(detail.group('msg'))
            found.append('Error:')
        if _APT_ERROR_RE.match(line):
            found.append(MARKER_APT_ERROR)
        bad_option = _BAD_OPTION_RE.match(stripped)
        if bad_option:
            found.append('option %s is not valid' % bad_option.group('opt'))
        if found:
            errors.append(stripped)
            for marker in found:
                if marker not in markers:
                    markers.append(marker)
    if conffiles:
        warnings = ['%s %s' % (MARKER_CONFFILES, ', '.join(conffiles))]
    return {
        'errors': errors,
        'error_messages': error_messages,
        'markers': markers,
        'overwritten_conffiles': conffiles,
        'warnings': warnings,
    }


def log_slice(before, after):
    """The part of the log this run appended: ``after`` minus the ``before`` prefix.

    Copes with logrotate having moved the old log away during the run (``after`` does not start
    with ``before``): then the whole of ``after`` is this run's.
    """
    before = before or ''
    after = after or ''
    if before and after.startswith(before):
        return after[len(before):]
    return after


def last_run(log_text):
    """The last wazo-upgrade run of a log: from its last ``wazo-upgrade started at`` banner.

    Returns ``(text, finished)``: ``finished`` is True when the run's ``stopped at`` banner is
    there (the wrapper writes it last, so a run without it was killed or is still going).
    """
    lines = (log_text or '').splitlines(True)
    start = None
    for index, line in enumerate(lines):
        if LOG_START_RE.match(line.strip()):
            start = index
    if start is None:
        return ''.join(lines), False
    # The banner is preceded by a blank line and a row of '='; keep them out.
    run = lines[start:]
    finished = any(LOG_STOP_RE.match(line.strip()) for line in run)
    return ''.join(run), finished


def services_status(rc):
    """Meaning of ``wazo-service status`` exit code: running / stopped / failed / unknown."""
    return SERVICES_STATUS.get(rc, 'unknown')


def not_running_services(text, ignore=()):
    """``{service: state}`` of the services ``wazo-service status`` lists as not running, minus ``ignore``.

    Its lines are ``<TAB><state><TAB><TAB><service>`` after ``Checking services...``. Returns None when
    no service line could be read (the exit code is then all there is to go by).
    """
    seen = False
    down = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2 or not line.startswith('\t'):
            continue
        seen = True
        state, name = fields
        if state != 'running' and name not in ignore:
            down[name] = state
    return down if seen else None


def _is_udp_5060_drop(spec):
    tokens = spec.split()
    opts = {}
    for index, token in enumerate(tokens[:-1]):
        if token.startswith('-') and (index == 0 or tokens[index - 1] != '!'):
            opts.setdefault(token, tokens[index + 1])
    proto = opts.get('-p') or opts.get('--protocol')
    dport = opts.get('--dport') or opts.get('--destination-port')
    target = opts.get('-j') or opts.get('--jump')
    return proto == 'udp' and dport == '5060' and target == 'DROP'


def find_sip_drop_rules(text):
    """Leftover ``wazo-service stop`` rules: DROP of udp/5060 in INPUT.

    Accepts ``iptables -S INPUT`` (``-A INPUT -p udp -m udp --dport 5060 -j DROP``) and
    ``iptables -nvL INPUT`` / ``iptables -nL INPUT`` (``DROP udp -- * * 0.0.0.0/0 0.0.0.0/0
    udp dpt:5060``). Returns the matching lines (empty list: none).
    """
    found = []
    listing = False
    for raw in (text or '').splitlines():
        line = raw.strip()
        if not line:
            continue
        rule = _IPTABLES_S_RULE_RE.match(line)
        if rule:
            if _is_udp_5060_drop(rule.group('spec')):
                found.append(line)
            continue
        if line.startswith('Chain '):
            listing = line.split()[1:2] == ['INPUT']
            continue
        if _IPTABLES_L_HEADER_RE.match(line):
            continue
        if not listing:
            continue
        tokens = line.split()
        # -nvL rows start with pkts and bytes counters; -nL rows start with the target.
        if len(tokens) > 2 and tokens[0][:1].isdigit() and tokens[1][:1].isdigit():
            tokens = tokens[2:]
        if len(tokens) < 2 or tokens[0] != 'DROP' or tokens[1] not in ('udp', '17'):
            continue
        if re.search(r'(?:^|\s)dpt:5060(?:\s|$)', line):
            found.append(line)
    return found


def reboot_required(flag_exists, packages_text='', output=''):
    """``(required, packages)``: Debian's reboot-required flag (or wazo-dist-upgrade's RESTART notice in
    ``output``) and the packages listed in reboot-required.pkgs, without duplicates."""
    packages = []
    for line in (packages_text or '').splitlines():
        name = line.strip()
        if name and name not in packages:
            packages.append(name)
    required = bool(flag_exists) or MARKER_RESTART in (output or '')
    return required, packages


def reboot_warning(host, packages):
    """The warning shown and kept in the report when a stack needs a reboot after its upgrade."""
    return ('%s needs a reboot to finish its upgrade (%s%s): reboot it while it carries no call, '
            'e.g. the secondary before the next upgrade or while the primary carries the traffic, '
            'the primary during a maintenance window (wazo-mode maintenance on the proxy first)'
            % (host, REBOOT_REQUIRED_FILE, (': ' + ', '.join(packages)) if packages else ''))
