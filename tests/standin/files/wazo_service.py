#!/usr/bin/env python3
"""Wazo stand-in: /usr/bin/wazo-service, following wazo-platform/wazo-service (bin/wazo-service + main.py).

  wazo-service status|stop|start|restart|enable|disable [wazo|default|all]
status  prints "Checking services..." then "\t<running|stopped|failed|unknown>\t\t<name>" per service and exits
        0 all running, 1 some stopped, 2 some failed (stopped wins, as in main.py).
stop    "Closing port 5060." (iptables -I INPUT 1 -p udp --dport 5060 -j DROP unless present), then stops the
        services in reverse order.
start   starts the enabled services that are not running ("\tstarting X ... OK"); the wazo services are
        "disabled" while /var/lib/wazo/disabled exists (then only "\tX is disabled" is printed), then
        "Opening port 5060." (the DROP rule is deleted) and "Wazo fully booted". A unit that fails to start:
        " NOK", port opened, exit 1.
enable  removes /var/lib/wazo/disabled; disable touches it.
Differences: no monit handling, no xivo-check-db in status.
"""
import os
import subprocess
import sys

PATH = "/bin:/usr/bin:/sbin:/usr/sbin"
WAZO = ("wazo-dxtora wazo-provd wazo-agid asterisk wazo-amid wazo-call-logd wazo-agentd wazo-dird wazo-phoned "
        "wazo-calld wazo-websocketd wazo-chatd").split()
DEFAULT = "dahdi wazo-plugind wazo-webhookd xivo-sysconfd wazo-confgend wazo-confd wazo-auth".split() + WAZO
ALL = "rabbitmq-server consul postgresql nginx".split() + DEFAULT
DISABLED = os.environ.get("WAZO_STANDIN_DISABLED_FILE", "/var/lib/wazo/disabled")
PG_UNIT = "postgresql@15-main"


def sh(*args, quiet=False):
    return subprocess.run(list(args), env=dict(os.environ, PATH=PATH), check=False,
                          stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.DEVNULL if quiet else None, text=True)


def unit(service):
    return PG_UNIT if service == "postgresql" else service


def state(service):
    out = sh("systemctl", "show", "-p", "LoadState", "-p", "ActiveState", f"{unit(service)}.service", quiet=True)
    props = dict(line.split("=", 1) for line in (out.stdout or "").splitlines() if "=" in line)
    if props.get("LoadState") in (None, "not-found"):
        return "unknown"
    active = props.get("ActiveState")
    return {"active": "running", "failed": "failed"}.get(active, "stopped")


def enabled(service):
    return not (service in WAZO and os.path.exists(DISABLED))


def sip_drop_present():
    out = sh("iptables", "-n", "--list", quiet=True)
    return any(line.startswith("DROP") and "5060" in line for line in (out.stdout or "").splitlines())


def close_sip_port():
    print("Closing port 5060.", flush=True)
    if not sip_drop_present():
        sh("iptables", "-I", "INPUT", "1", "-p", "udp", "--dport", "5060", "-j", "DROP")


def open_sip_port():
    print("Opening port 5060.", flush=True)
    if sip_drop_present():
        sh("iptables", "-D", "INPUT", "-p", "udp", "--dport", "5060", "-j", "DROP")


def start(services):
    print("Waiting for services to start successfully...", flush=True)
    for service in services:
        if enabled(service) and state(service) != "running":
            print(f"\tstarting {unit(service)} ...", end="", flush=True)
            if sh("systemctl", "start", unit(service)).returncode != 0:
                print(" NOK", flush=True)
                open_sip_port()
                sys.exit(1)
            print(" OK", flush=True)
        elif not enabled(service):
            print(f"\t{service} is disabled", flush=True)
    open_sip_port()


def stop(services):
    close_sip_port()
    print("Waiting for services to stop successfully...", flush=True)
    for service in reversed(services):
        sh("systemctl", "stop", unit(service), quiet=True)


def status(services):
    states = [state(s) for s in services]
    print("Checking services...")
    for name, st in zip(services, states):
        print(f"\t{st}\t\t{name}")
    if "stopped" in states:
        return 1
    if "failed" in states:
        return 2
    return 0


def usage(filt, services):
    print(f"""usage : {sys.argv[0]} action [services_filter]
availables actions :
    status     : print status of all wazo services
    restart    : restart all wazo services
    stop       : stop all wazo services
    start      : start all wazo services
    enable     : enable all wazo services
    disable    : disable all wazo services

availables services_filter :
    wazo       : manage services only used on an active Wazo
    default    : wazo + messaging and configuration
    all        : default + web and database servers

impacted services ({filt}) : {' '.join(services)}""")
    return 0


def main(argv):
    action = argv[0] if argv else ""
    filt = argv[1] if len(argv) > 1 else "default"
    groups = {"default": DEFAULT, "all": ALL, "wazo": WAZO, "wazo-nomonit": WAZO, "xivo": WAZO, "xivo-nomonit": WAZO}
    if filt not in groups:
        print(f'Invalid service filter "{filt}"')
        return usage(filt, [])
    services = groups[filt]
    if action in ("status", "monitor"):
        return status(services)
    if action in ("restart", "force-reload"):
        stop(services)
        start(services)
        print("Wazo fully booted")
        return 0
    if action == "start":
        start(services)
        print("Wazo fully booted")
        return 0
    if action == "stop":
        stop(services)
        return 0
    if action == "enable":
        print("Enabling Wazo services...")
        if os.path.exists(DISABLED):
            os.unlink(DISABLED)
        return 0
    if action == "disable":
        print("Disabling Wazo services...")
        os.makedirs(os.path.dirname(DISABLED), exist_ok=True)
        open(DISABLED, "a").close()
        return 0
    return usage(filt, services)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
