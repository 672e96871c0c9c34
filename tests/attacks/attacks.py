"""Attacks on a running filegate, one per subcommand; prints "ok" or raises.

Usage: attacks.py CHECK FTP_PORT HTTP_PORT PID
Users (made by the Rust side): ann/ann-pw (home /users/ann), bob/bob-pw (home /users/bob,
holding secret.txt = SECRET).
"""
import ftplib
import http.client
import socket
import sys
import time

CHECK, FTP, HTTP, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
H = "127.0.0.1"
THIEF = "127.0.0.2"
SECRET = b"bob's secret"


def ftp(user="ann", pw="ann-pw", source=None):
    f = ftplib.FTP()
    f.connect(H, FTP, timeout=20, source_address=(source, 0) if source else None)
    f.login(user, pw)
    return f


def rss_kib():
    with open(f"/proc/{PID}/status") as s:
        for line in s:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw(source=None):
    s = socket.create_connection((H, FTP), timeout=20, source_address=(source, 0) if source else None)
    return s, s.makefile("rb")


def reply(fileobj):
    """One complete FTP reply (multi-line aware); b"" on close."""
    first = fileobj.readline()
    if len(first) >= 4 and first[3:4] == b"-":
        code = first[:3]
        while True:
            line = fileobj.readline()
            if not line or (line[:3] == code and line[3:4] == b" "):
                break
    return first


def passive_port_theft():
    f = ftp()
    f.storbinary("STOR mine.txt", __import__("io").BytesIO(b"for ann only"))
    host, port = ftplib.parse227(f.sendcmd("PASV"))
    thief = socket.create_connection((host, port), timeout=5, source_address=(THIEF, 0))
    thief.settimeout(5)
    stolen = b""
    try:
        f.sendcmd("TYPE I")
        f.putcmd("RETR mine.txt")
        first = f.getresp()  # 150, or 425 if the server gave up on the port
        try:
            while True:
                chunk = thief.recv(65536)
                if not chunk:
                    break
                stolen += chunk
        except OSError:
            pass
        if first.startswith("150"):
            f.getresp()
    except ftplib.all_errors:
        pass
    assert stolen == b"", f"the thief on {THIEF} read {stolen!r}"
    # The session keeps working for its owner.
    got = []
    f.retrbinary("RETR mine.txt", got.append)
    assert b"".join(got) == b"for ann only"
    f.quit()


def ftp_traversal():
    f = ftp()
    for path in ["../bob/secret.txt", "/../bob/secret.txt", "../../users/bob/secret.txt",
                 "/users/bob/secret.txt", "..\\bob\\secret.txt", "%2e%2e/bob/secret.txt",
                 "./../.././../bob/secret.txt"]:
        got = []
        try:
            f.retrbinary(f"RETR {path}", got.append)
        except ftplib.error_perm as e:
            assert str(e)[:3] in ("550", "553", "501"), f"{path}: {e}"
        assert SECRET not in b"".join(got), f"{path} leaked bob's file"
    for d in ["..", "../..", "/..", "../bob", "/../../.."]:
        try:
            f.cwd(d)
        except ftplib.error_perm:
            pass
        pwd = f.pwd()
        names = f.nlst()
        assert "secret.txt" not in names, f"cwd {d} -> {pwd} shows {names}"
        f.cwd("/")
    f.quit()


def brute_force():
    # Wrong passwords from the attacker's address, each on a new connection.
    refused_at = None
    for i in range(12):
        s, r = raw(THIEF)
        greeting = reply(r)
        if greeting.startswith(b"421"):
            refused_at = i
            s.close()
            break
        s.sendall(b"USER ann\r\n")
        reply(r)
        t = time.monotonic()
        s.sendall(f"PASS wrong{i}\r\n".encode())
        answer = reply(r)
        s.close()
        assert answer.startswith(b"530") or answer.startswith(b"421"), answer
        if answer.startswith(b"421"):
            refused_at = i
            break
    assert refused_at is not None, "the address was never blocked"
    # Even the right password is refused from the blocked address...
    s, r = raw(THIEF)
    greeting = reply(r)
    if not greeting.startswith(b"421"):
        s.sendall(b"USER ann\r\n")
        reply(r)
        s.sendall(b"PASS ann-pw\r\n")
        answer = reply(r)
        assert not answer.startswith(b"230"), "a blocked address logged in"
    s.close()
    # ...while the same user logs in from another address.
    f = ftp()
    f.quit()


def connection_flood():
    held = []
    refused = 0
    for _ in range(30):
        s, r = raw(THIEF)
        g = reply(r)
        if g.startswith(b"421"):
            refused += 1
            s.close()
        else:
            held.append(s)
    assert refused > 0, f"all 30 connections from one address were accepted"
    f = ftp()  # another address is still served
    f.voidcmd("NOOP")
    f.quit()
    for s in held:
        s.close()


def ftp_slow_client():
    before = rss_kib()
    s, r = raw()
    assert reply(r).startswith(b"220")
    start = time.monotonic()
    closed = False
    try:
        for b in b"USER ann and many more bytes, one a second\r\n":
            s.sendall(bytes([b]))
            time.sleep(1)
            if time.monotonic() - start > 60:
                break
    except OSError:
        closed = True
    if not closed:
        s.settimeout(20)
        try:
            rest = r.read()
            closed = True
        except OSError:
            closed = True
    took = time.monotonic() - start
    assert closed and took < 60, f"a byte-a-second client kept its session for {took:.0f}s"
    assert rss_kib() - before < 50 * 1024
    f = ftp()
    f.voidcmd("NOOP")
    f.quit()


def ftp_huge_line():
    s, r = raw()
    assert reply(r).startswith(b"220")
    try:
        s.sendall(b"NOOP " + b"x" * (1 << 20) + b"\r\n")
    except OSError:
        pass
    answer = reply(r)
    assert answer.startswith(b"500"), answer
    try:
        s.sendall(b"NOOP\r\n")
        after = reply(r)
        assert after.startswith(b"200") or after.startswith(b"421") or after == b"", after
    except OSError:
        pass
    s.close()
    f = ftp()
    f.voidcmd("NOOP")
    f.quit()


def http_request(raw_bytes, timeout=20):
    s = socket.create_connection((H, HTTP), timeout=timeout)
    try:
        s.sendall(raw_bytes)
    except OSError:
        pass
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    return data.split(b"\r\n", 1)[0]


def http_ok():
    c = http.client.HTTPConnection(H, HTTP, timeout=20)
    c.request("GET", "/_/health")
    assert c.getresponse().status == 200
    c.close()


def http_traversal():
    import base64
    auth = "Basic " + base64.b64encode(b"ann:ann-pw").decode()
    for path in ["/../bob/secret.txt", "/%2e%2e/bob/secret.txt", "/%2E%2E/bob/secret.txt",
                 "/..%2fbob%2fsecret.txt", "/x/..%2f..%2fbob/secret.txt", "/..\\bob\\secret.txt",
                 "/%2e%2e%5cbob%5csecret.txt", "/secret.txt%00", "/.%2e/bob/secret.txt",
                 "/users/bob/secret.txt", "/%252e%252e/bob/secret.txt"]:
        s = socket.create_connection((H, HTTP), timeout=20)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        status = data.split(b" ", 2)[1]
        assert status in (b"400", b"403", b"404"), f"{path}: {data[:200]!r}"
        assert SECRET not in data, f"{path} leaked bob's file"


def http_slow_headers():
    before = rss_kib()
    s = socket.create_connection((H, HTTP), timeout=30)
    start = time.monotonic()
    closed = False
    try:
        for b in b"GET /_/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
            s.sendall(bytes([b]))
            time.sleep(1)
            if time.monotonic() - start > 60:
                break
    except OSError:
        closed = True
    if not closed:
        try:
            s.recv(100)
            closed = True
        except OSError:
            closed = True
    took = time.monotonic() - start
    assert closed and took < 60, f"a byte-a-second header writer held on for {took:.0f}s"
    assert rss_kib() - before < 50 * 1024
    http_ok()


def http_oversized():
    status = http_request(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    assert status.split(b" ")[1:2] in ([b"431"], [b"400"]) or status == b"", status
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
    status = http_request(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status.split(b" ")[1:2] in ([b"431"], [b"400"]) or status == b"", status
    # A huge Content-Length and no body: nothing is reserved for it, others are served.
    before = rss_kib()
    import base64
    auth = "Basic " + base64.b64encode(b"ann:ann-pw").decode()
    s = socket.create_connection((H, HTTP), timeout=30)
    s.sendall(f"PUT /huge.bin HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1000000000000000\r\n\r\n".encode())
    time.sleep(1)
    http_ok()
    assert rss_kib() - before < 50 * 1024
    s.close()
    http_ok()


def never_reads():
    import base64
    before = rss_kib()
    auth = "Basic " + base64.b64encode(b"ann:ann-pw").decode()
    sockets = []
    for _ in range(20):
        s = socket.create_connection((H, HTTP), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode())
        sockets.append(s)
    f = ftp()
    f.sendcmd("TYPE I")
    conn = f.transfercmd("RETR big.bin")
    time.sleep(3)
    grown = rss_kib() - before
    assert grown < 64 * 1024, f"server grew by {grown} KiB for clients that never read"
    http_ok()
    g = ftp()
    g.voidcmd("NOOP")
    g.quit()
    for s in sockets:
        s.close()
    conn.close()


CHECKS = {
    "passive_port_theft": passive_port_theft,
    "ftp_traversal": ftp_traversal,
    "brute_force": brute_force,
    "connection_flood": connection_flood,
    "ftp_slow_client": ftp_slow_client,
    "ftp_huge_line": ftp_huge_line,
    "http_traversal": http_traversal,
    "http_slow_headers": http_slow_headers,
    "http_oversized": http_oversized,
    "never_reads": never_reads,
}

CHECKS[CHECK]()
print("ok")
