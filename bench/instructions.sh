#!/usr/bin/env bash
# User-space instructions per 4 KiB FTP download on one session, counted by callgrind: exact and
# repeatable on a machine whose timings swing ±50 % between runs. It runs the release server
# under valgrind twice (N1 and N2 downloads of one file on one session, after a login and one
# upload) and prints the difference per download for the thread that ran the session, total and
# by function (inclusive). Kernel time (the syscalls themselves) is not in these counts.
#
#   bench/instructions.sh [N1] [N2]        (300, 900; about a minute)
#
# Needs valgrind (apt-get install -y valgrind) and python3. Ports 23761-23771.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
N1="${1:-300}"
N2="${2:-900}"
WORK="$(mktemp -d /tmp/filegate-instructions.XXXXXX)"
SERVER=""
trap 'if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" || true; fi; rm -rf "$WORK"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 1; }
cargo build --release -p filegate --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$ROOT/target/release/filegate"

run() { # N -> $WORK/N/cg.out-* (one file per thread)
  local n="$1" dir="$WORK/$1"
  mkdir -p "$dir"
  echo benchpass | "$BIN" --data-dir "$dir/data" user add benchftp --home / --perms all >/dev/null
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.out" \
    "$BIN" --data-dir "$dir/data" serve --ftp-addr 127.0.0.1:23761 --passive-ports 23762-23770 \
    --http-addr 127.0.0.1:23771 --admin-password instructions-only 2>"$dir/log" >/dev/null &
  SERVER=$!
  for _ in $(seq 1 600); do grep -q "filegate serving" "$dir/log" && break; sleep 0.1; done
  grep -q "filegate serving" "$dir/log" || { cat "$dir/log" >&2; exit 1; }
  python3 - "$n" <<'EOF'
import re, socket, sys
c = socket.create_connection(("127.0.0.1", 23761), timeout=60)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = c.makefile("rb")
def cmd(s):
    c.sendall(s.encode() + b"\r\n")
    return f.readline()
def pasv():
    m = re.search(r"(\d+),(\d+)\)?\r", cmd("PASV").decode())
    return socket.create_connection(("127.0.0.1", int(m.group(1)) * 256 + int(m.group(2))), timeout=60)
f.readline(); cmd("USER benchftp"); cmd("PASS benchpass"); cmd("TYPE I")
d = pasv(); c.sendall(b"STOR f.bin\r\n"); f.readline(); d.sendall(b"x" * 4096); d.close(); f.readline()
for _ in range(int(sys.argv[1])):
    d = pasv(); c.sendall(b"RETR f.bin\r\n"); r = f.readline()
    n = 0
    while True:
        k = d.recv(65536)
        if not k:
            break
        n += len(k)
    d.close()
    if not r.startswith(b"2"):
        r = f.readline()
    assert n == 4096 and r.startswith(b"226"), (n, r)
cmd("QUIT")
EOF
  kill -TERM "$SERVER"; wait "$SERVER" || true
  SERVER=""
}
run "$N1"
run "$N2"

python3 - "$WORK" "$N1" "$N2" <<'EOF'
import glob, re, subprocess, sys
work, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def session_thread(n):  # the per-thread file that ran Connection::run_line
    for p in sorted(glob.glob(f"{work}/{n}/cg.out-*")):
        if "Connection::run_line" in open(p, errors="replace").read():
            return p
    sys.exit(f"no session thread found for N={n}")
def inclusive(p):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", p],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(?:=> )?(\S*?:)?(.+?)(?: \(\d[\d,]*x\))?(?: \[.*\])?$", line)
        if m:
            name = m.group(3).strip()
            costs[name] = max(costs.get(name, 0), int(m.group(1).replace(",", "")))
    return costs
a, b = inclusive(session_thread(n1)), inclusive(session_thread(n2))
per = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
total = per.get("PROGRAM TOTALS", 0)
print(f"user-space instructions per download, session thread: {total:,.0f}")
shown = 0
for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
    if k in ("PROGRAM TOTALS", "events annotated") or v < total * 0.03:
        continue
    if re.search(r"runtime::|task::|Scoped|block_on|thread_start|backtrace|call_once|clone$|start_thread|TrackedFuture|Instrumented|LocalKey|enter_runtime", k):
        continue  # the frames every poll passes through
    print(f"{v:10,.0f}  {k[:150]}")
    shown += 1
    if shown >= 25:
        break
EOF
