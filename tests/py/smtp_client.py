"""Drive examples/smtp_sink/ with Python's smtplib, over concurrent connections.

Usage: smtp_client.py HOST PORT EXPECTDIR MAX_SIZE

Every case runs in its own thread (its own connection or connections), all at once. Reply
codes are checked here; for each message the sink must store, the exact expected file
content (X-Mail-From / X-Rcpt-To lines, then the message after dot-unstuffing) is written
to EXPECTDIR/<case>-<n>.eml, and the Rust test compares the sink's maildir with EXPECTDIR
byte for byte. Exits 0 when every case passed; prints the failures and exits 1 otherwise.
"""

import os
import random
import smtplib
import socket
import sys
import threading
import traceback

HOST, PORT, EXPECT, MAX_SIZE = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
CRLF = b"\r\n"
lock = threading.Lock()
counter = {}


def expect(case, sender, rcpts, msg):
    """Records the file the sink must store for msg as sent with smtplib."""
    body = msg if msg.endswith(CRLF) else msg + CRLF  # smtplib adds the final CRLF
    data = b"X-Mail-From: " + sender.encode() + CRLF
    data += b"X-Rcpt-To: " + ", ".join(rcpts).encode() + CRLF + body
    with lock:
        n = counter.get(case, 0)
        counter[case] = n + 1
    with open(os.path.join(EXPECT, "%s-%d.eml" % (case, n)), "wb") as f:
        f.write(data)


def connect():
    s = smtplib.SMTP(HOST, PORT, timeout=30)
    return s


def check(got, code, what):
    if got[0] != code:
        raise AssertionError("%s: expected %d, got %r" % (what, code, got))


def case_simple():
    msg = b"From: alice@example.com\r\nSubject: hi\r\n\r\nHello, Bob.\r\n"
    with connect() as s:
        s.sendmail("alice@example.com", ["bob@example.org"], msg)
    expect("simple", "alice@example.com", ["bob@example.org"], msg)


def case_dots():
    msg = (b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n...three\r\nend.\r\n"
           b" .not leading\r\n.\r\n\r\n.")
    with connect() as s:
        s.sendmail("dots@example.com", ["r@example.org"], msg)
    expect("dots", "dots@example.com", ["r@example.org"], msg)


def case_eightbit():
    rnd = random.Random(8)
    lines = []
    for _ in range(200):
        line = bytes(rnd.choice([b for b in range(256) if b not in (10, 13)])
                     for _ in range(rnd.randrange(0, 120)))
        lines.append(line)
    msg = b"Subject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + CRLF.join(lines) + CRLF
    with connect() as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("8bitmime") and s.has_extn("size"), s.esmtp_features
        assert int(s.esmtp_features["size"]) == MAX_SIZE, s.esmtp_features
        s.sendmail("eight@example.com", ["r@example.org"], msg, mail_options=["BODY=8BITMIME"])
    expect("eightbit", "eight@example.com", ["r@example.org"], msg)


def case_big():
    rnd = random.Random(5)
    line = bytes(rnd.randrange(33, 127) for _ in range(998))
    lines = [b"%06d" % i + line[6:] for i in range(5 * 1024 * 1024 // 1000)]
    msg = b"Subject: big\r\n\r\n" + CRLF.join(lines) + CRLF
    assert len(msg) < MAX_SIZE
    with connect() as s:
        s.sendmail("big@example.com", ["r@example.org"], msg)
    expect("big", "big@example.com", ["r@example.org"], msg)


def case_recipients():
    rcpts = ["one@example.org", "two@example.org", "three@example.net"]
    msg = b"Subject: many\r\n\r\nto three\r\n"
    with connect() as s:
        refused = s.sendmail("many@example.com", rcpts, msg)
        assert refused == {}, refused
    expect("recipients", "many@example.com", rcpts, msg)


def case_rset():
    msg = b"Subject: after rset\r\n\r\nonly this one\r\n"
    with connect() as s:
        s.ehlo()
        check(s.mail("dropped@example.com"), 250, "MAIL")
        check(s.rcpt("nobody@example.org"), 250, "RCPT")
        check(s.rset(), 250, "RSET")
        check(s.docmd("DATA"), 503, "DATA after RSET")
        s.sendmail("kept@example.com", ["r@example.org"], msg)
    expect("rset", "kept@example.com", ["r@example.org"], msg)


def case_oversize_declared():
    msg = b"Subject: huge\r\n\r\n" + b"x" * (MAX_SIZE + 1) + CRLF
    with connect() as s:
        try:
            s.sendmail("huge@example.com", ["r@example.org"], msg)
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 552, e
        else:
            raise AssertionError("an over-size SIZE= was accepted")
        check(s.noop(), 250, "NOOP after 552")


def case_oversize_received():
    # No SIZE= declared: the sink finds out while receiving.
    msg = b"Subject: huge\r\n\r\n" + (b"y" * 998 + CRLF) * (MAX_SIZE // 1000 + 10)
    with connect() as s:
        s.ehlo()
        check(s.mail("huge2@example.com"), 250, "MAIL")
        check(s.rcpt("r@example.org"), 250, "RCPT")
        check(s.data(msg), 552, "DATA over the limit")
        # The session goes on.
        small = b"Subject: small\r\n\r\nfits\r\n"
        s.sendmail("small@example.com", ["r@example.org"], small)
    expect("oversize_received", "small@example.com", ["r@example.org"], small)


def raw_session():
    sock = socket.create_connection((HOST, PORT), timeout=30)
    f = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            assert line.endswith(CRLF), line
            lines.append(line)
            if line[3:4] == b" ":
                return int(line[:3]), lines

    def cmd(line, code):
        sock.sendall(line + CRLF)
        got = reply()
        assert got[0] == code, (line[:60], got)
        return got

    greeting = reply()
    assert greeting[0] == 220, greeting
    return sock, reply, cmd


def case_disconnect_mid_data():
    sock, reply, cmd = raw_session()
    cmd(b"EHLO me", 250)
    cmd(b"MAIL FROM:<gone@example.com>", 250)
    cmd(b"RCPT TO:<r@example.org>", 250)
    cmd(b"DATA", 354)
    sock.sendall(b"Subject: never stored\r\n\r\n" + b"partial\r\n" * 1000)
    sock.close()


def case_raw_edges():
    sock, reply, cmd = raw_session()
    cmd(b"NOOP " + b"x" * 600, 500)  # command line over 512 bytes
    cmd(b"FOO", 500)
    cmd(b"MAIL FROM:<a@example.com>", 503)  # before HELO
    cmd(b"HELO me", 250)
    cmd(b"MAIL FROM:<>", 250)  # the null sender
    cmd(b"RCPT TO:<>", 501)
    cmd(b"RCPT TO:<r@example.org>", 250)
    cmd(b"VRFY someone", 252)
    cmd(b"DATA", 354)
    cmd(b".", 250)  # an empty message
    # Pipelined in one write, with a dot line right after DATA.
    sock.sendall(b"MAIL FROM:<pipe@example.com>\r\nRCPT TO:<a@x.org>\r\nRCPT TO:<b@x.org>\r\n"
                 b"DATA\r\n..\r\n.x\r\n\r\n.\r\nQUIT\r\n")
    for code in (250, 250, 250, 354, 250, 221):
        got = reply()
        assert got[0] == code, (code, got)
    assert sock.recv(1) == b""
    sock.close()
    with open(os.path.join(EXPECT, "raw-empty.eml"), "wb") as f:
        f.write(b"X-Mail-From: \r\nX-Rcpt-To: r@example.org\r\n")
    with open(os.path.join(EXPECT, "raw-pipelined.eml"), "wb") as f:
        f.write(b"X-Mail-From: pipe@example.com\r\nX-Rcpt-To: a@x.org, b@x.org\r\n.\r\nx\r\n\r\n")


def case_several_on_one_connection():
    with connect() as s:
        for i in range(3):
            msg = b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i)
            s.sendmail("serial@example.com", ["r%d@example.org" % i], msg)
            expect("serial", "serial@example.com", ["r%d@example.org" % i], msg)


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


def main():
    failures = []

    def run(case):
        try:
            case()
        except Exception:
            with lock:
                failures.append("%s:\n%s" % (case.__name__, traceback.format_exc()))

    threads = [threading.Thread(target=run, args=(c,)) for c in CASES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("%d cases passed" % len(CASES))


main()
