"""The lab's SIPp scenarios against each other on 127.0.0.1 (no lab needed): the route-following UACs
(uac_rr.xml, uac_direct.xml) complete their calls with the Record-Route-echoing SIPp UAS (uas_rr.xml).
Against the real Asterisk they run in test_lab_sip.py."""
import shutil
import socket
import subprocess

import pytest

from conftest import SIPP_DIR

pytestmark = pytest.mark.skipif(not shutil.which("sipp"), reason="sipp is not installed")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("scenario,extra", [
    ("uac_rr.xml", ["-d", "500", "-m", "3", "-r", "10"]),
    ("uac_direct.xml", ["-d", "300", "-m", "2"]),
])
def test_uac_scenarios_against_the_sipp_uas(tmp_path, scenario, extra):
    uport, cport = free_udp_port(), free_udp_port()
    calls = extra[extra.index("-m") + 1]
    uas = subprocess.Popen(["sipp", "-sf", str(SIPP_DIR / "uas_rr.xml"), "-i", "127.0.0.1", "-p", str(uport),
                            "-m", calls, "-timeout", "30", "-timeout_error", "-nostdin", "-nd"],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        uac = subprocess.run(["sipp", "-sf", str(SIPP_DIR / scenario), "-s", "1000", "-i", "127.0.0.1",
                              "-p", str(cport), "-timeout", "20", "-timeout_error", "-nostdin", "-nd", *extra,
                              f"127.0.0.1:{uport}"],
                             capture_output=True, text=True, timeout=40, cwd=tmp_path, check=False)
        assert uac.returncode == 0, uac.stdout[-2000:] + uac.stderr[-2000:]
        assert uas.wait(timeout=20) == 0, uas.stderr.read()[-2000:]
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait(timeout=10)
