"""The stand-in's HA logic, apt repository builder and wazo-call-logs guard, on this machine (temporary files,
no systemctl)."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FILES


def load(name, path, env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def api(tmp_path, monkeypatch):
    pg = tmp_path / "pg"
    pg.mkdir()
    (pg / "pg_hba.conf").write_text("local all postgres peer\nhost asterisk postgres 10.0.0.9/32 trust\n")
    (pg / "postgresql.conf").write_text("#listen_addresses = 'localhost'\nlisten_addresses = '*'\nport = 5432\n")
    (tmp_path / "cron").mkdir()
    (tmp_path / "cron" / "xivo-ha-slave").write_text("stale\n")
    env = {"WAZO_STANDIN_HA_CONF": str(tmp_path / "xivo" / "ha.conf"), "WAZO_STANDIN_PG_DIR": str(pg),
           "WAZO_STANDIN_CRON_DIR": str(tmp_path / "cron"), "WAZO_STANDIN_SENTINEL_DIR": str(tmp_path / "wazo"),
           "WAZO_STANDIN_API_LOG": str(tmp_path / "api.log"), "WAZO_STANDIN_API_DRY_RUN": "1"}
    return load("wazo_api", FILES / "wazo_api.py", env, monkeypatch), tmp_path


def test_ha_defaults_and_master(api):
    mod, tmp = api
    assert mod.read_ha() == {"node_type": "disabled", "remote_address": ""}
    mod.update_ha({"node_type": "master", "remote_address": "10.0.0.12"})
    assert json.loads((tmp / "xivo" / "ha.conf").read_text()) == {"node_type": "master", "remote_address": "10.0.0.12"}
    assert (tmp / "cron" / "xivo-ha-master").read_text() == (
        "0 * * * * root /usr/sbin/xivo-master-slave-db-replication 10.0.0.12 >/dev/null\n"
        "0 * * * * root /usr/bin/wazo-sync >/dev/null\n")
    assert not (tmp / "cron" / "xivo-ha-slave").exists()
    assert (tmp / "pg" / "pg_hba.conf").read_text() == "local all postgres peer\n"
    assert (tmp / "pg" / "postgresql.conf").read_text() == "#listen_addresses = 'localhost'\nport = 5432\n"
    assert (tmp / "wazo" / "is-primary").exists() and not (tmp / "wazo" / "is-secondary").exists()
    log = (tmp / "api.log").read_text()
    assert "exec /bin/systemctl restart postgresql.service" in log
    assert "exec /usr/sbin/xivo-manage-slave-services start" in log


def test_ha_slave_then_disabled(api):
    mod, tmp = api
    mod.update_ha({"node_type": "slave", "remote_address": "10.0.0.11"})
    assert (tmp / "pg" / "pg_hba.conf").read_text().endswith("host asterisk postgres 10.0.0.11/32 trust\n")
    assert (tmp / "pg" / "postgresql.conf").read_text().endswith("listen_addresses = '*'\n")
    assert (tmp / "cron" / "xivo-ha-slave").read_text() == \
        "* * * * * root /usr/sbin/xivo-check-master-status 10.0.0.11 >/dev/null\n"
    assert (tmp / "wazo" / "is-secondary").exists()
    assert "xivo-manage-slave-services" not in (tmp / "api.log").read_text()
    mod.update_ha({"node_type": "disabled", "remote_address": ""})
    assert "host asterisk postgres" not in (tmp / "pg" / "pg_hba.conf").read_text()
    assert "\nlisten_addresses" not in (tmp / "pg" / "postgresql.conf").read_text()
    assert list((tmp / "cron").iterdir()) == [] and list((tmp / "wazo").iterdir()) == []


@pytest.mark.parametrize("body,field", [
    ({"node_type": "master", "remote_address": "stack2.example.com"}, "remote_address"),
    ({"node_type": "master", "remote_address": ""}, "remote_address"),
    ({"node_type": "slave"}, "remote_address"),
    ({"node_type": "primary", "remote_address": "10.0.0.1"}, "node_type"),
    ({"remote_address": "10.0.0.1"}, "node_type"),
])
def test_confd_validation(api, body, field):
    assert field in api[0].validate_ha(body)


@pytest.mark.parametrize("body", [
    {"node_type": "disabled"}, {"node_type": "disabled", "remote_address": ""},
    {"node_type": "master", "remote_address": "10.0.0.12"}, {"node_type": "slave", "remote_address": "fd00::1"},
])
def test_confd_accepts(api, body):
    assert api[0].validate_ha(body) == {}


def test_call_logs_refuse_without_uuid():
    env = {k: v for k, v in os.environ.items() if k != "XIVO_UUID"}
    out = subprocess.run([sys.executable, str(FILES / "wazo-call-logs")], env=env, capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.returncode == 1
    assert out.stderr.rstrip().endswith("xivo.config_helper.UUIDNotFound: XIVO_UUID environment variable is not set")


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb missing")
def test_build_repo(tmp_path):
    subprocess.run([sys.executable, str(FILES / "build_repo.py"), str(tmp_path), "25.16", "25.17"], check=True,
                   timeout=60)
    packages = (tmp_path / "Packages").read_text()
    assert packages.count("Package: wazo-platform\n") == 2 and packages.count("Package: wazo-upgrade\n") == 2
    assert "Version: 25.17\n" in packages and "Filename: ./wazo-platform_25.17_all.deb\n" in packages
    listing = subprocess.run(["dpkg-deb", "-c", str(tmp_path / "wazo-platform_25.17_all.deb")], check=True,
                             capture_output=True, text=True).stdout
    assert "./usr/share/wazo/WAZO-VERSION" in listing
    assert "SHA256:" in (tmp_path / "Release").read_text()
