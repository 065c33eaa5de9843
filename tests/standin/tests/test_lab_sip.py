"""Lab fidelity: the real Asterisk 22 on the stacks' udp/5060, counted by the real `asterisk -rx`, and its calls
ended when wazo-service stops it."""
import re
import shutil
import subprocess
import time

import pytest

from conftest import SIPP_DIR, channels, wait_for
from sipclient import SDP, SipClient, headers, status, to_tag

pytestmark = pytest.mark.lab

HOSTS = ["primary", "secondary"]
NOT_RUNNING = "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)"


def requests(messages, method):
    return [m for m in messages if m.startswith(f"{method} ")]


@pytest.mark.skipif(not shutil.which("sipp"), reason="sipp is not installed on this machine")
@pytest.mark.parametrize("host", HOSTS)
def test_sipp_call_is_counted_then_released(lab, host, tmp_path):
    before = channels(lab, host)
    assert before is not None and before[:2] == (0, 0), f"{host} is not idle: {before}"
    cmd = ["sipp", "-sf", str(SIPP_DIR / "uac_rr.xml"), "-s", "1000", "-d", "4000", "-m", "1",
           "-i", lab.local_ip_towards(host), "-timeout", "30", "-timeout_error", "-nostdin",
           f"{lab.ip(host)}:5060"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        during = wait_for(lambda: (c := channels(lab, host)) and c[:2] == (1, 1) and c, timeout=4)
        assert during, f"{host}: the call was not counted ({channels(lab, host)})"
        assert during[2] == before[2] + 1
        show = lab.run(host, "asterisk -rx 'core show channels'", check=True).stdout
        assert re.search(r"^PJSIP/anonymous-\S+\s+1000@from-extern:\d\s+Up\s", show, re.M), show
        rc = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, proc.stderr.read()[-2000:]
    assert wait_for(lambda: channels(lab, host)[:2] == (0, 0), timeout=5)


@pytest.mark.skipif(not shutil.which("sipp"), reason="sipp is not installed on this machine")
def test_cancel_of_a_ringing_call(lab, tmp_path):
    """The `noanswer` user rings until the caller cancels: 180, then CANCEL -> 200 + 487 (uac_cancel.xml)."""
    host = "primary"
    cmd = ["sipp", "-sf", str(SIPP_DIR / "uac_cancel.xml"), "-s", "noanswer", "-m", "1",
           "-i", lab.local_ip_towards(host), "-timeout", "20", "-timeout_error", "-nostdin", "-nd",
           f"{lab.ip(host)}:5060"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=40, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert wait_for(lambda: channels(lab, host)[:2] == (0, 0), timeout=5)


@pytest.mark.parametrize("user,code", [("busy", 486), ("unavailable", 503)])
def test_test_users_refuse(lab, user, code):
    host = "secondary"
    c = SipClient((lab.ip(host), 5060), local_ip=lab.local_ip_towards(host))
    try:
        call_id = f"lab-{user}-{time.time()}"
        c.request("INVITE", call_id, 1, "r1", user=user, body=SDP)
        final = c.responses(until={code}, timeout=5)
        assert final and status(final[-1]) == code, [status(r) for r in final]
        c.request("ACK", call_id, 1, "r1", user=user, to_tag=to_tag(final[-1]))
    finally:
        c.close()


@pytest.mark.parametrize("host", HOSTS)
def test_answers_like_asterisk_behind_a_proxy(lab, host):
    c = SipClient((lab.ip(host), 5060), local_ip=lab.local_ip_towards(host))
    try:
        rr = [f"<sip:{lab.local_ip_towards(host)};lr;ftag=t1>"]
        call_id = f"lab-rr-{time.time()}"
        c.request("INVITE", call_id, 1, "t1", extra=[f"Record-Route: {rr[0]}"], body=SDP)
        got = c.responses(until={200}, timeout=5)
        ok = got[-1]
        assert status(ok) == 200, [status(g) for g in got]
        assert headers(ok, "Record-Route") == rr
        assert headers(ok, "Contact")[0].startswith(f"<sip:{lab.ip(host)}:5060")
        assert "m=audio" in ok and headers(ok, "Content-Type") == ["application/sdp"]
        assert headers(ok, "Call-ID") == [call_id]
        c.request("ACK", call_id, 1, "t1", to_tag=to_tag(ok))
        c.request("BYE", call_id, 2, "t1", to_tag=to_tag(ok))
        assert status(c.responses(until={200}, timeout=5)[-1]) == 200
        c.request("OPTIONS", f"lab-opt-{time.time()}", 1, "o1", user="")
        assert status(c.responses(until={200}, timeout=5)[-1]) == 200
    finally:
        c.close()


def test_stopped_services_end_calls_and_close_5060(lab):
    """wazo-service stop: Asterisk stops, hanging up its calls (BYE to the caller), udp/5060 is closed, the CLI
    cannot connect; after the start the dialog is unknown (481)."""
    host = "secondary"
    c = SipClient((lab.ip(host), 5060), local_ip=lab.local_ip_towards(host))
    try:
        call_id = f"lab-lost-{time.time()}"
        c.request("INVITE", call_id, 1, "l1", body=SDP)
        ok = c.responses(until={200}, timeout=5)[-1]
        c.request("ACK", call_id, 1, "l1", to_tag=to_tag(ok))
        assert wait_for(lambda: channels(lab, host)[:2] == (1, 1), timeout=5)
        lab.run(host, "wazo-service stop", check=True)
        try:
            got = c.responses(timeout=3)
            byes = requests(got, "BYE")
            assert byes and headers(byes[0], "Call-ID") == [call_id], got
            assert "DROP" in lab.run(host, "iptables -n --list INPUT | grep 'udp dpt:5060'").stdout
            assert lab.run(host, "systemctl is-active asterisk").stdout.strip() != "active"
            out = lab.run(host, "asterisk -rx 'core show channels count'")
            assert out.returncode == 1
            assert (out.stdout + out.stderr).strip() == NOT_RUNNING
            assert lab.run(host, "wazo-service status").returncode == 1
            c.request("OPTIONS", f"lab-opt-{time.time()}", 1, "o2", user="")
            assert c.responses(timeout=2) == [], "a stopped stack answered"
        finally:
            lab.run(host, "wazo-service start", check=True)
        assert lab.run(host, "iptables -n --list INPUT | grep -c 'udp dpt:5060'").stdout.strip() == "0"
        assert wait_for(lambda: channels(lab, host), timeout=20)[:2] == (0, 0), "the lost call came back"
        c.request("BYE", call_id, 3, "l1", to_tag=to_tag(ok))
        assert status(c.responses(until={481}, timeout=5)[-1]) == 481
    finally:
        c.close()
