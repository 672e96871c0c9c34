"""RFC checks with Python's ftplib, command by command, against a running filegate.

Usage: python3 ftplib_checks.py HOST PORT USER PASSWORD [CHECK ...]
Prints one line per check and exits 1 if any failed. Every socket has a timeout.
"""

import ftplib
import hashlib
import io
import socket
import sys
import time
import traceback

HOST, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
TIMEOUT = 20


def connect(login=True):
    f = ftplib.FTP()
    f.connect(HOST, PORT, timeout=TIMEOUT)
    if login:
        f.login(USER, PASSWORD)
    return f


def expect_error(code, fn, *args):
    try:
        fn(*args)
    except ftplib.Error as e:
        assert str(e).startswith(code), f"expected {code}, got {e}"
        return str(e)
    raise AssertionError(f"expected {code}, got success")


def upload(f, name, data):
    f.storbinary(f"STOR {name}", io.BytesIO(data))


def download(f, name, rest=None):
    out = io.BytesIO()
    f.retrbinary(f"RETR {name}", out.write, rest=rest)
    return out.getvalue()


def check_greeting_and_login():
    f = connect(login=False)
    assert f.getwelcome().startswith("220 "), f.getwelcome()
    expect_error("503", f.sendcmd, "PASS x")
    expect_error("530", f.sendcmd, "PWD")
    assert f.sendcmd("USER " + USER).startswith("331")
    assert f.sendcmd("PASS " + PASSWORD).startswith("230")
    assert f.sendcmd("SYST") == "215 UNIX Type: L8"
    f.quit()


def check_pasv_and_epsv():
    f = connect()
    resp = f.sendcmd("PASV")
    assert resp.startswith("227 Entering Passive Mode ("), resp
    host, port = ftplib.parse227(resp)
    assert host == "127.0.0.1", host
    resp = f.sendcmd("EPSV")
    assert resp.startswith("229 Entering Extended Passive Mode (|||"), resp
    _, eport = ftplib.parse229(resp, f.sock.getpeername())
    assert eport > 0
    expect_error("522", f.sendcmd, "EPSV 2")
    # Both kinds carry a transfer.
    upload(f, "pasv.bin", b"x" * 1000)
    f.set_pasv(True)
    assert download(f, "pasv.bin") == b"x" * 1000
    assert f.sendcmd("EPSV ALL").startswith("200")
    expect_error("503", f.sendcmd, "PASV")
    expect_error("503", f.sendcmd, "PORT 127,0,0,1,200,1")
    f.af = socket.AF_INET6  # makes ftplib use EPSV
    assert download(f, "pasv.bin") == b"x" * 1000
    f.quit()


def check_257_quoting():
    f = connect()
    resp = f.sendcmd('MKD we"ird')
    assert resp == '257 "/we""ird" created', resp
    assert f.sendcmd('CWD we"ird').startswith("250")
    assert f.pwd() == '/we"ird', f.pwd()
    resp = f.sendcmd("PWD")
    assert resp.startswith('257 "/we""ird"'), resp
    f.cwd("/")
    f.rmd('we"ird')
    f.quit()


def check_mlsd_facts():
    f = connect()
    f.mkd("m")
    upload(f, "m/a.txt", b"12345")
    f.mkd("m/sub")
    entries = dict(f.mlsd("m"))
    assert set(entries) == {"a.txt", "sub"}, entries
    a = entries["a.txt"]
    assert a["type"] == "file" and a["size"] == "5", a
    assert len(a["modify"]) == 14 and a["modify"].isdigit(), a
    assert set(a["perm"]) <= set("adfrw") and "r" in a["perm"], a
    assert a["unique"], a
    assert entries["sub"]["type"] == "dir", entries
    # A new version has a new unique fact.
    upload(f, "m/a.txt", b"123456")
    b = dict(f.mlsd("m"))["a.txt"]
    assert b["unique"] != a["unique"] and b["size"] == "6", (a, b)
    lines = []
    resp = f.sendcmd("MLST m/a.txt")
    lines = resp.split("\r\n") if "\r\n" in resp else resp.split("\n")
    assert lines[0].startswith("250-"), resp
    assert lines[1].startswith(" type=file;size=6;modify="), resp
    assert lines[1].endswith("; /m/a.txt"), resp
    assert lines[-1].startswith("250 "), resp
    assert f.sendcmd("OPTS MLST type;size;").startswith("200")
    facts = dict(f.mlsd("m"))["a.txt"]
    assert set(facts) == {"type", "size"}, facts
    feat = f.sendcmd("FEAT")
    assert " MLST type*;size*;modify;perm;unique;" in feat, feat
    f.quit()


def check_rest_download_and_upload():
    f = connect()
    data = bytes(range(256)) * 40
    upload(f, "rest.bin", data)
    assert download(f, "rest.bin", rest=1000) == data[1000:]
    assert download(f, "rest.bin", rest=len(data)) == b""
    f.voidcmd("TYPE I")
    expect_error("554", f.retrbinary, "RETR rest.bin", lambda b: None, 8192, len(data) + 1)
    # REST before STOR writes from the offset.
    f.voidcmd("TYPE I")
    f.storbinary("STOR rest.bin", io.BytesIO(b"ZZZZ"), rest=100)
    got = download(f, "rest.bin")
    assert got == data[:100] + b"ZZZZ", len(got)
    assert f.size("rest.bin") == 104
    f.quit()


def check_appe_and_stou():
    f = connect()
    upload(f, "app.txt", b"one\n")
    f.storbinary("APPE app.txt", io.BytesIO(b"two\n"))
    assert download(f, "app.txt") == b"one\ntwo\n"
    f.voidcmd("TYPE I")
    conn, _ = f.ntransfercmd("STOU app.txt")
    conn.sendall(b"unique")
    conn.close()
    resp = f.voidresp()
    assert resp.startswith("226"), resp
    names = f.nlst()
    assert "app.txt.1" in names, names
    assert download(f, "app.txt.1") == b"unique"
    f.quit()


def check_rnfr_rnto():
    f = connect()
    upload(f, "from.txt", b"data")
    expect_error("503", f.sendcmd, "RNTO x")
    assert f.sendcmd("RNFR from.txt").startswith("350")
    assert f.sendcmd("RNTO to.txt").startswith("250")
    assert download(f, "to.txt") == b"data"
    expect_error("550", f.sendcmd, "RNFR from.txt")
    f.rename("to.txt", "from.txt")
    f.delete("from.txt")
    expect_error("550", f.delete, "from.txt")
    f.quit()


def check_abor_mid_transfer():
    f = connect()
    big = b"\0" * (8 << 20)
    upload(f, "abor.bin", big)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR abor.bin")
    assert len(conn.recv(1024)) > 0
    resp = f.abort()
    assert resp.startswith("426"), resp
    conn.close()
    resp = f.getresp()
    assert resp.startswith("226"), resp
    # The session continues.
    assert f.pwd() == "/"
    assert download(f, "abor.bin") == big
    # ABOR with nothing running.
    assert f.sendcmd("ABOR").startswith("225")
    # ABOR during an upload keeps the previous version.
    f.voidcmd("TYPE I")
    conn = f.transfercmd("STOR abor.bin")
    conn.sendall(b"partial" * 1000)
    time.sleep(0.2)
    resp = f.abort()
    assert resp.startswith("426") or resp.startswith("226"), resp
    conn.close()
    if resp.startswith("426"):
        assert f.getresp().startswith("226")
    assert f.size("abor.bin") == len(big)
    f.quit()


def check_bounce_refused():
    # A listener on another loopback address: the server must never connect to it.
    trap = socket.socket()
    trap.bind(("127.0.0.2", 0))
    trap.listen(1)
    trap.settimeout(1.0)
    tport = trap.getsockname()[1]
    f = connect()
    expect_error("504", f.sendcmd, "PORT 127,0,0,2,%d,%d" % (tport >> 8, tport & 0xFF))
    expect_error("504", f.sendcmd, "EPRT |1|127.0.0.2|%d|" % tport)
    expect_error("504", f.sendcmd, "PORT 127,0,0,1,0,21")
    # The refused PORT set nothing up.
    expect_error("425", f.sendcmd, "LIST")
    try:
        trap.accept()
        raise AssertionError("the server connected to a third party")
    except socket.timeout:
        pass
    trap.close()
    f.quit()


def check_passive_theft_refused():
    f = connect()
    upload(f, "theft.txt", b"secret")
    f.voidcmd("TYPE I")
    host, port = ftplib.parse227(f.sendcmd("PASV"))
    thief = socket.socket()
    thief.bind(("127.0.0.2", 0))
    thief.settimeout(5)
    thief.connect((host, port))
    f.sock.sendall(b"RETR theft.txt\r\n")
    # The thief gets nothing: the server drops it and waits for the real client.
    real = socket.create_connection((host, port), timeout=5)
    assert f.getresp().startswith("150")
    data = b""
    while True:
        chunk = real.recv(4096)
        if not chunk:
            break
        data += chunk
    real.close()
    assert data == b"secret", data
    assert f.getresp().startswith("226")
    try:
        stolen = thief.recv(100)
    except (ConnectionResetError, socket.timeout):
        stolen = b""
    assert stolen == b"", stolen
    thief.close()
    f.quit()


def check_active_mode():
    f = connect()
    f.set_pasv(False)
    upload(f, "active.bin", b"a" * 70000)
    assert download(f, "active.bin") == b"a" * 70000
    assert "active.bin" in f.nlst()
    f.quit()


def check_two_sessions_different_cwd():
    a, b = connect(), connect()
    a.mkd("s1")
    a.mkd("s2")
    a.cwd("s1")
    b.cwd("s2")
    upload(a, "f.txt", b"from a")
    upload(b, "f.txt", b"from b")
    assert a.pwd() == "/s1" and b.pwd() == "/s2"
    assert download(a, "f.txt") == b"from a"
    assert download(b, "f.txt") == b"from b"
    a.quit()
    b.quit()


def check_quit_and_reconnect_carry_no_state():
    f = connect()
    f.mkd("deep")
    f.cwd("deep")
    f.voidcmd("TYPE I")
    f.sendcmd("REST 5")
    f.sendcmd("RNFR /deep")
    assert f.quit().startswith("221")
    g = connect()
    assert g.pwd() == "/"
    expect_error("503", g.sendcmd, "RNTO /x")
    upload(g, "fresh.txt", b"0123456789")
    assert download(g, "fresh.txt") == b"0123456789", "no REST carried over"
    g.quit()


def check_utf8_names():
    f = connect()
    f.encoding = "utf-8"
    assert f.sendcmd("OPTS UTF8 ON").startswith("200")
    name = "grüße-日本語-ñ.txt"
    upload(f, name, "inhalt".encode())
    assert name in f.nlst()
    assert download(f, name) == "inhalt".encode()
    assert name in dict(f.mlsd())
    f.mkd("dïr")
    f.cwd("dïr")
    assert f.pwd() == "/dïr"
    f.quit()


def check_type_a_conversion():
    f = connect()
    upload(f, "unix.txt", b"one\ntwo\n")
    lines = []
    f.retrlines("RETR unix.txt", lines.append)
    assert lines == ["one", "two"], lines
    raw = io.BytesIO()
    f.voidcmd("TYPE A")
    conn = f.transfercmd("RETR unix.txt")
    while True:
        chunk = conn.recv(1024)
        if not chunk:
            break
        raw.write(chunk)
    conn.close()
    f.voidresp()
    assert raw.getvalue() == b"one\r\ntwo\r\n", raw.getvalue()
    f.storlines("STOR dos.txt", io.BytesIO(b"a\r\nb\r\n"))
    assert download(f, "dos.txt") == b"a\nb\n"
    f.quit()


def check_overlong_line_and_unknown_commands():
    f = connect()
    f.sock.sendall(b"NOOP " + b"x" * 10000 + b"\r\n")
    expect_error("500", f.getresp)
    assert f.sendcmd("NOOP").startswith("200")
    expect_error("500", f.sendcmd, "FROBNICATE")
    expect_error("502", f.sendcmd, "SMNT x")
    expect_error("501", f.sendcmd, "TYPE Q")
    expect_error("504", f.sendcmd, "MODE B")
    assert f.sendcmd("MODE S").startswith("200")
    assert f.sendcmd("STRU F").startswith("200")
    assert f.sendcmd("ALLO 10").startswith("202")
    assert f.sendcmd("HELP").startswith("214")
    assert f.sendcmd("SITE HELP").startswith("214")
    f.quit()


def check_size_mdtm_stat():
    f = connect()
    upload(f, "s.bin", b"12345678")
    f.voidcmd("TYPE I")
    assert f.size("s.bin") == 8
    resp = f.sendcmd("MDTM s.bin")
    assert resp.startswith("213 ") and len(resp) == 18, resp
    expect_error("550", f.size, "missing")
    stat = f.sendcmd("STAT")
    assert stat.startswith("211-") and stat.endswith("211 End of status"), stat
    stat = f.sendcmd("STAT s.bin")
    assert stat.startswith("213-") and "s.bin" in stat, stat
    f.quit()


def check_list_and_nlst():
    f = connect()
    f.mkd("l")
    upload(f, "l/x.txt", b"xyz")
    lines = []
    f.retrlines("LIST l", lines.append)
    assert len(lines) == 1 and lines[0].startswith("-rw-r--r-- 1 ftp ftp") and lines[0].endswith(" x.txt"), lines
    assert f.nlst("l") == ["x.txt"]
    expect_error("450", f.retrlines, "LIST /missing", lines.append)
    f.quit()


def check_rein_and_host():
    f = connect(login=False)
    assert f.sendcmd("HOST localhost").startswith("220")
    f.login(USER, PASSWORD)
    expect_error("503", f.sendcmd, "HOST localhost")
    assert f.sendcmd("REIN").startswith("220")
    expect_error("530", f.sendcmd, "PWD")
    f.login(USER, PASSWORD)
    assert f.pwd() == "/"
    f.quit()


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]


def main():
    wanted = set(sys.argv[5:])
    failed = 0
    passed = 0
    for check in CHECKS:
        if wanted and check.__name__ not in wanted:
            continue
        start = time.time()
        try:
            check()
            passed += 1
            print(f"ok   {check.__name__} ({time.time() - start:.2f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {check.__name__}", flush=True)
            traceback.print_exc()
    print(f"ftplib: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
