"""The stand-in SIP UAS and `asterisk -rx`, run on 127.0.0.1 (no lab needed)."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import FILES, SIPP_DIR, parse_counts, wait_for
from sipclient import SDP, SipClient, headers, status, to_tag


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture()
def uas(tmp_path):
    port = free_udp_port()
    ctl, state = tmp_path / "asterisk.ctl", tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, str(FILES / "sip_uas.py"), "--bind", "127.0.0.1", "--port", str(port),
                             "--ctl", str(ctl), "--state", str(state), "--answer-delay", "0.05",
                             "--odbc-dir", str(tmp_path / "res_odbc.d")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert wait_for(ctl.exists, timeout=10), "the UAS did not create its control socket"
    env = dict(os.environ, WAZO_STANDIN_ASTERISK_CTL=str(ctl), WAZO_STANDIN_COMMAND_LOG=str(tmp_path / "cmd.log"))

    def cli(command):
        return subprocess.run([sys.executable, str(FILES / "asterisk_cli.py"), "-rx", command], env=env,
                              capture_output=True, text=True, timeout=10, check=False)

    yield {"port": port, "cli": cli, "state": state, "tmp": tmp_path, "proc": proc}
    proc.terminate()
    proc.wait(timeout=10)


def test_invite_echoes_record_route_and_is_counted(uas):
    c = SipClient(("127.0.0.1", uas["port"]))
    rr = ["<sip:10.0.0.1;lr;ftag=abc>", "<sip:10.0.0.2;lr>"]
    c.request("INVITE", "call-rr-1", 1, "t1", extra=[f"Record-Route: {rr[0]}", f"Record-Route: {rr[1]}"], body=SDP)
    got = c.responses(until={200})
    codes = [status(r) for r in got]
    assert codes[0] == 100 and 180 in codes and codes[-1] == 200, codes
    ok = got[-1]
    ringing = got[codes.index(180)]
    for resp in (ringing, ok):
        assert headers(resp, "Record-Route") == rr
        assert headers(resp, "Call-ID") == ["call-rr-1"]
        assert headers(resp, "CSeq") == ["1 INVITE"]
        assert "tag=t1" in headers(resp, "From")[0]
        assert "rport=" in headers(resp, "Via")[0]
    assert to_tag(ok) and to_tag(ok) == to_tag(ringing)
    assert headers(ok, "Contact")[0].startswith("<sip:1000@127.0.0.1:")
    assert "m=audio" in ok and headers(ok, "Content-Type") == ["application/sdp"]
    out = uas["cli"]("core show channels count")
    assert out.returncode == 0
    assert out.stdout == "1 active channel\n1 active call\n1 call processed\n"
    c.request("ACK", "call-rr-1", 1, "t1", to_tag=to_tag(ok))
    c.request("BYE", "call-rr-1", 2, "t1", to_tag=to_tag(ok))
    assert [status(r) for r in c.responses(until={200})] == [200]
    assert parse_counts(uas["cli"]("core show channels count").stdout) == (0, 0, 1)
    c.close()


def test_options_unknown_dialog_and_busy(uas):
    c = SipClient(("127.0.0.1", uas["port"]))
    c.request("OPTIONS", "opt-1", 1, "o1")
    assert [status(r) for r in c.responses(until={200})] == [200]
    c.request("BYE", "nope", 1, "b1", to_tag="x")
    assert [status(r) for r in c.responses(until={481})] == [481]
    c.request("INFO", "nope2", 1, "b1", to_tag="x")
    assert [status(r) for r in c.responses(until={481})] == [481]
    c.request("INVITE", "busy-1", 1, "b2", user="busy", body=SDP)
    got = c.responses(until={486})
    assert status(got[-1]) == 486
    assert parse_counts(uas["cli"]("core show channels count").stdout)[:2] == (0, 0)
    c.close()


def test_cancel_gets_487(uas):
    c = SipClient(("127.0.0.1", uas["port"]))
    branch = c.request("INVITE", "cancel-1", 1, "c1", user="noanswer", body=SDP)
    got = c.responses(until={180})
    assert status(got[-1]) == 180
    assert parse_counts(uas["cli"]("core show channels count").stdout)[:2] == (1, 1)
    c.request("CANCEL", "cancel-1", 1, "c1", user="noanswer", branch=branch)
    codes = [status(r) for r in c.responses(until={487})]
    assert codes == [200, 487]
    assert parse_counts(uas["cli"]("core show channels count").stdout)[:2] == (0, 0)
    c.close()


def test_200_retransmitted_until_ack(uas):
    c = SipClient(("127.0.0.1", uas["port"]))
    c.request("INVITE", "retx-1", 1, "r1", body=SDP)
    got = c.responses(until={200})
    again = c.responses(until={200}, timeout=2)
    assert status(got[-1]) == 200 and again and status(again[0]) == 200, "no timer-G retransmission"
    c.request("ACK", "retx-1", 1, "r1", to_tag=to_tag(got[-1]))
    time.sleep(0.1)
    c.responses(timeout=0.1)
    assert c.responses(timeout=1.2) == [], "200 still retransmitted after the ACK"
    c.close()


def test_cli_messages(uas):
    cli = uas["cli"]
    assert cli("core reload").returncode == 0
    assert cli("module reload res_pjsip_publish_asterisk.so").stdout.strip() == \
        "Module 'res_pjsip_publish_asterisk.so' reloaded successfully."
    (uas["tmp"] / "res_odbc.d").mkdir()
    (uas["tmp"] / "res_odbc.d" / "02-active-active.conf").write_text(
        "[secondary]\nenabled => yes\ndsn => secondary\nusername => asterisk\nmax_connections => 1\n")
    out = cli("odbc show").stdout
    assert "Name:   secondary" in out and "DSN:    secondary" in out
    assert "No such command" in cli("bogus command").stdout
    log = (uas["tmp"] / "cmd.log").read_text().splitlines()
    assert [line.split(" ", 2)[1:] for line in log] == [
        ["[ok]", "core reload"], ["[ok]", "module reload res_pjsip_publish_asterisk.so"], ["[ok]", "odbc show"],
        ["[error]", "bogus command"]]


def test_cli_when_daemon_stopped(uas):
    uas["proc"].terminate()
    uas["proc"].wait(timeout=10)
    out = uas["cli"]("core show channels count")
    assert out.returncode == 1
    assert out.stdout.startswith("Unable to connect to remote asterisk (does ")
    assert out.stdout.rstrip().endswith("exist?)")
    assert "[unreachable] core show channels count" in (uas["tmp"] / "cmd.log").read_text()


def test_graceful_stop_refuses_new_calls(uas):
    c = SipClient(("127.0.0.1", uas["port"]))
    c.request("INVITE", "g-1", 1, "g1", body=SDP)
    ok = c.responses(until={200})[-1]
    c.request("ACK", "g-1", 1, "g1", to_tag=to_tag(ok))
    uas["cli"]("core stop gracefully")
    c.request("INVITE", "g-2", 1, "g2", body=SDP)
    assert status(c.responses(until={503})[-1]) == 503
    c.request("BYE", "g-1", 2, "g1", to_tag=to_tag(ok))
    assert status(c.responses(until={200})[-1]) == 200
    uas["proc"].wait(timeout=5)  # exits once the last call is gone
    c.close()


@pytest.mark.skipif(not shutil.which("sipp"), reason="sipp is not installed")
@pytest.mark.parametrize("scenario,service,extra", [
    ("uac_rr.xml", "1000", ["-d", "1500", "-m", "3", "-r", "10"]),
    ("uac_direct.xml", "1000", ["-d", "300", "-m", "2"]),
    ("uac_cancel.xml", "noanswer", ["-m", "1"]),
])
def test_sipp_scenarios_against_uas(uas, tmp_path, scenario, service, extra):
    sport = free_udp_port()
    cmd = ["sipp", "-sf", str(SIPP_DIR / scenario), "-s", service, "-i", "127.0.0.1", "-p", str(sport),
           "-timeout", "20", "-timeout_error", "-nostdin", "-trace_err", "-error_file", str(tmp_path / "err.log"),
           *extra, f"127.0.0.1:{uas['port']}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=40, cwd=tmp_path, check=False)
    assert proc.returncode == 0, (proc.stdout[-2000:], (tmp_path / "err.log").read_text()
                                  if (tmp_path / "err.log").exists() else "")
    assert wait_for(lambda: parse_counts(uas["cli"]("core show channels count").stdout)[:2] == (0, 0), timeout=5)
