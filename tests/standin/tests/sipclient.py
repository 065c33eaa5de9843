"""A tiny raw-UDP SIP client for the lab tests (no dependency, bounded waits)."""
import random
import re
import socket
import time


class SipClient:
    def __init__(self, target, local_ip="127.0.0.1"):
        self.target = target  # (ip, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.local = self.sock.getsockname()

    def close(self):
        self.sock.close()

    def request(self, method, call_id, cseq, from_tag, to_tag=None, user="1000", extra=(), body="", branch=None,
                cseq_method=None):
        branch = branch or f"z9hG4bK{random.getrandbits(48):x}"
        ip, port = self.target
        uri = f"sip:{user}@{ip}:{port}" if user else f"sip:{ip}:{port}"
        to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch={branch};rport",
                 f"From: <sip:tester@{self.local[0]}:{self.local[1]}>;tag={from_tag}",
                 f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq} {cseq_method or method}",
                 f"Contact: <sip:tester@{self.local[0]}:{self.local[1]}>", "Max-Forwards: 70", *extra]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), self.target)
        return branch

    def responses(self, until=None, timeout=3.0):
        """Collect responses until one whose status code is in `until` arrives, or timeout."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recvfrom(65536)[0]
            except socket.timeout:
                break
            text = data.decode(errors="replace")
            got.append(text)
            if until and status(text) in until:
                break
        return got


def status(text):
    m = re.match(r"SIP/2\.0 (\d{3})", text)
    return int(m.group(1)) if m else None


def headers(text, name):
    head = text.split("\r\n\r\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]
            if line.split(":", 1)[0].strip().lower() == name.lower()]


def to_tag(text):
    m = re.search(r";tag=([^;>\s]+)", headers(text, "To")[0])
    return m.group(1) if m else None


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
