"""The role's config template renders into a file the daemon accepts; defaults and specs agree."""
import os

import jinja2
import yaml

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles', 'ha_check')


def _bool(value):
    return value if isinstance(value, bool) else str(value).lower() in ('1', 'true', 'yes', 'on')


def render(template, **overrides):
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as f:
        values = yaml.safe_load(f)
    values.update(wazo_mm_ha_check_primary_address='10.0.0.11', wazo_mm_ha_check_secondary_address='10.0.0.12',
                  wazo_mm_ha_check_primary_sip_port=5060, wazo_mm_ha_check_secondary_sip_port=5060,
                  wazo_mm_ha_check_ssh_user='root', wazo_mm_ha_check_ssh_key='/root/.ssh/id_ed25519',
                  wazo_mm_ha_check_state_dir='/var/lib/wazo-maintenance',
                  wazo_mm_ha_check_lib_dir='/usr/local/lib/wazo-maintenance',
                  wazo_mm_ha_check_rpc_path='/run/kamailio/kamailio_rpc.sock', ansible_managed='managed')
    values.update(overrides)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, 'templates')),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters['bool'] = _bool
    return env.get_template(template).render(**values)


def test_default_config_is_valid(tmp_path, hcmod):
    path = tmp_path / 'ha-check.conf'
    path.write_text(render('ha-check.conf.j2'))
    cfg = hcmod.Config.load(str(path))
    assert cfg.primary == '10.0.0.11' and cfg.secondary == '10.0.0.12'
    assert cfg.failover_commands == hcmod.DEFAULT_FAILOVER_COMMANDS
    assert cfg.failback_commands == []
    assert cfg.ssh_known_hosts is None
    assert cfg.detection_time <= 5
    assert hcmod.main(['--check-config', str(path)]) == 0


def test_custom_commands_and_bad_address(tmp_path, hcmod):
    path = tmp_path / 'ha-check.conf'
    path.write_text(render('ha-check.conf.j2', wazo_mm_ha_check_failback_commands=["echo 'back' > /tmp/x"],
                           wazo_mm_ha_check_failback_delay=120))
    cfg = hcmod.Config.load(str(path))
    assert cfg.failback_commands == ["echo 'back' > /tmp/x"] and cfg.failback_delay == 120
    path.write_text(render('ha-check.conf.j2', wazo_mm_ha_check_secondary_address='wazo2.example.com'))
    assert hcmod.main(['--check-config', str(path)]) == 1


def test_unit_restarts_always():
    unit = render('wazo-ha-check.service.j2', wazo_mm_ha_check_bin='/usr/local/sbin/wazo-ha-check',
                  wazo_mm_ha_check_config='/etc/wazo-maintenance/ha-check.conf')
    assert 'Restart=always' in unit and '--config /etc/wazo-maintenance/ha-check.conf' in unit


def test_unit_watchdog():
    """systemd kills and restarts a daemon that stopped notifying (it notifies with the standard library)."""
    unit = render('wazo-ha-check.service.j2', wazo_mm_ha_check_bin='/usr/local/sbin/wazo-ha-check',
                  wazo_mm_ha_check_config='/etc/wazo-maintenance/ha-check.conf').splitlines()
    assert 'Type=notify' in unit and 'WatchdogSec=10' in unit and 'NotifyAccess=main' in unit
    assert any(line.startswith('TimeoutAbortSec=') for line in unit)


def test_argument_specs_cover_defaults():
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as f:
        defaults = set(yaml.safe_load(f))
    with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as f:
        specs = yaml.safe_load(f)['argument_specs']
    documented = set()
    for entry in specs.values():
        documented |= set(entry.get('options', {}))
    assert defaults <= documented, defaults - documented
