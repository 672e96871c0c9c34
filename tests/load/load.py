"""Mixed load on a running filegate: FTP sessions and HTTP clients at once, uploading,
downloading, listing, renaming and deleting on overlapping paths.

Every body uploaded is self-describing (a header naming file and generation, then bytes that
follow from them), so every download is checked to be one complete version. Anything but an
expected conflict (a file renamed or deleted by someone else meanwhile) counts as an error.

Usage: load.py FTP_PORT HTTP_PORT USER PASSWORD FTP_CLIENTS HTTP_CLIENTS SECONDS [PID]
Prints one JSON line of totals; exits 1 if there were errors or bad bodies.
"""
import asyncio
import base64
import hashlib
import json
import random
import sys
import time

FTP_PORT, HTTP_PORT = int(sys.argv[1]), int(sys.argv[2])
USER, PASSWORD = sys.argv[3], sys.argv[4]
N_FTP, N_HTTP, SECONDS = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
PID = int(sys.argv[8]) if len(sys.argv) > 8 else None
HOST = "127.0.0.1"
FILES = 24
TIMEOUT = 60

stats = {"ops": 0, "uploads": 0, "downloads": 0, "lists": 0, "renames": 0, "deletes": 0,
         "conflicts": 0, "errors": 0, "bad_bodies": 0, "max_rss_kib": 0}
errors = []


def body(file_id, gen):
    n = 100 + (file_id * 7919 + gen * 104729) % 20000
    seed = hashlib.sha256(f"{file_id}:{gen}".encode()).digest()
    reps = n // 32 + 1
    return f"{file_id:08d}:{gen:012d}:".encode() + (seed * reps)[:n]


def check(data):
    try:
        file_id, gen = int(data[:8]), int(data[9:21])
    except ValueError:
        return False
    return data == body(file_id, gen)


def error(what):
    stats["errors"] += 1
    if len(errors) < 20:
        errors.append(what)


async def rss_sampler(stop):
    while not stop.is_set() and PID:
        try:
            with open(f"/proc/{PID}/status") as s:
                for line in s:
                    if line.startswith("VmRSS:"):
                        stats["max_rss_kib"] = max(stats["max_rss_kib"], int(line.split()[1]))
        except OSError:
            pass
        await asyncio.sleep(0.5)


class Ftp:
    async def connect(self):
        self.r, self.w = await asyncio.open_connection(HOST, FTP_PORT)
        await self.reply()
        await self.cmd(f"USER {USER}")
        code, text = await self.cmd(f"PASS {PASSWORD}")
        assert code == 230, text
        await self.cmd("TYPE I")

    async def reply(self):
        line = await asyncio.wait_for(self.r.readline(), TIMEOUT)
        if not line:
            raise ConnectionError("control connection closed")
        text = line.decode("utf-8", "replace")
        if text[3:4] == "-":
            while True:
                more = (await asyncio.wait_for(self.r.readline(), TIMEOUT)).decode("utf-8", "replace")
                if not more or (more[:3] == text[:3] and more[3:4] == " "):
                    break
        return int(text[:3]), text

    async def cmd(self, line):
        self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        return await self.reply()

    async def data(self, line, payload=None):
        code, text = await self.cmd("EPSV")
        if code != 229:
            raise ConnectionError(text)
        port = int(text.split("|")[3])
        dr, dw = await asyncio.open_connection(HOST, port)
        self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        code, text = await self.reply()
        if code not in (125, 150):
            dw.close()
            return code, text, b""
        got = b""
        if payload is not None:
            dw.write(payload)
            await dw.drain()
            dw.close()
        else:
            got = await asyncio.wait_for(dr.read(), TIMEOUT)
            dw.close()
        code, text = await self.reply()
        return code, text, got


async def ftp_client(i, deadline):
    f = Ftp()
    try:
        await f.connect()
    except Exception as e:  # noqa: BLE001
        error(f"ftp{i} login: {e!r}")
        return
    gen = i * 1_000_000
    while time.monotonic() < deadline:
        fid = random.randrange(FILES)
        op = random.random()
        try:
            if op < 0.35:
                gen += 1
                code, text, _ = await f.data(f"STOR f{fid}", body(fid, gen))
                if code == 226:
                    stats["uploads"] += 1
                elif code in (450, 550, 553):
                    stats["conflicts"] += 1
                else:
                    error(f"STOR: {text.strip()}")
            elif op < 0.75:
                code, text, got = await f.data(f"RETR f{fid}")
                if code == 226:
                    stats["downloads"] += 1
                    if not check(got):
                        stats["bad_bodies"] += 1
                elif code in (450, 550):
                    stats["conflicts"] += 1
                else:
                    error(f"RETR: {text.strip()}")
            elif op < 0.85:
                code, text, _ = await f.data("MLSD")
                if code == 226:
                    stats["lists"] += 1
                else:
                    error(f"MLSD: {text.strip()}")
            elif op < 0.95:
                code, text = await f.cmd(f"RNFR f{fid}")
                if code == 350:
                    code, text = await f.cmd(f"RNTO f{random.randrange(FILES)}")
                if code == 250:
                    stats["renames"] += 1
                elif code in (450, 550, 553):
                    stats["conflicts"] += 1
                else:
                    error(f"RNFR/RNTO: {text.strip()}")
            else:
                code, text = await f.cmd(f"DELE f{fid}")
                if code == 250:
                    stats["deletes"] += 1
                elif code in (450, 550):
                    stats["conflicts"] += 1
                else:
                    error(f"DELE: {text.strip()}")
            stats["ops"] += 1
        except Exception as e:  # noqa: BLE001
            error(f"ftp{i}: {e!r}")
            return
    try:
        await f.cmd("QUIT")
    except Exception:  # noqa: BLE001
        pass


AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


async def http_exchange(r, w, method, path, payload=b"", extra=""):
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {AUTH}\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n")
    w.write(head.encode() + payload)
    await w.drain()
    status_line = await asyncio.wait_for(r.readline(), TIMEOUT)
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await asyncio.wait_for(r.readline(), TIMEOUT)
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        if k.lower() == "content-length":
            length = int(v)
        if k.lower() == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    data = b""
    if method == "HEAD" or status in (204, 304):
        return status, data
    if chunked:
        while True:
            size = int((await asyncio.wait_for(r.readline(), TIMEOUT)).split(b";")[0], 16)
            if size == 0:
                await r.readline()
                break
            data += await asyncio.wait_for(r.readexactly(size), TIMEOUT)
            await r.readline()
    elif length:
        data = await asyncio.wait_for(r.readexactly(length), TIMEOUT)
    return status, data


async def http_client(i, deadline):
    try:
        r, w = await asyncio.open_connection(HOST, HTTP_PORT)
    except Exception as e:  # noqa: BLE001
        error(f"http{i} connect: {e!r}")
        return
    gen = 500_000 + i * 1_000_000
    while time.monotonic() < deadline:
        fid = random.randrange(FILES)
        op = random.random()
        try:
            if op < 0.35:
                gen += 1
                status, _ = await http_exchange(r, w, "PUT", f"/f{fid}", body(fid, gen))
                if status in (201, 204):
                    stats["uploads"] += 1
                elif status in (409, 412):
                    stats["conflicts"] += 1
                else:
                    error(f"PUT {status}")
            elif op < 0.75:
                status, data = await http_exchange(r, w, "GET", f"/f{fid}")
                if status == 200:
                    stats["downloads"] += 1
                    if not check(data):
                        stats["bad_bodies"] += 1
                elif status == 404:
                    stats["conflicts"] += 1
                else:
                    error(f"GET {status}")
            elif op < 0.85:
                status, data = await http_exchange(r, w, "GET", "/", extra="Accept: application/json\r\n")
                if status == 200:
                    stats["lists"] += 1
                    json.loads(data)
                else:
                    error(f"LIST {status}")
            elif op < 0.95:
                # A different target: WebDAV answers a move onto itself with 403.
                to = (fid + random.randrange(1, FILES)) % FILES
                status, _ = await http_exchange(r, w, "MOVE", f"/f{fid}",
                                                extra=f"Destination: /f{to}\r\n")
                if status in (201, 204):
                    stats["renames"] += 1
                elif status in (404, 409, 412):
                    stats["conflicts"] += 1
                else:
                    error(f"MOVE {status}")
            else:
                status, _ = await http_exchange(r, w, "DELETE", f"/f{fid}")
                if status in (200, 204):
                    stats["deletes"] += 1
                elif status in (404, 409):
                    stats["conflicts"] += 1
                else:
                    error(f"DELETE {status}")
            stats["ops"] += 1
        except Exception as e:  # noqa: BLE001
            error(f"http{i}: {e!r}")
            return
    w.close()


async def main():
    deadline = time.monotonic() + SECONDS
    stop = asyncio.Event()
    sampler = asyncio.create_task(rss_sampler(stop))
    tasks = [ftp_client(i, deadline) for i in range(N_FTP)] + [http_client(i, deadline) for i in range(N_HTTP)]
    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), SECONDS + 3 * TIMEOUT)
    stats["seconds"] = round(time.monotonic() - start, 1)
    stop.set()
    await sampler
    stats["errors_seen"] = errors
    print(json.dumps(stats))
    sys.exit(1 if stats["errors"] or stats["bad_bodies"] else 0)


asyncio.run(main())
