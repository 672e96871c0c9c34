#!/usr/bin/env bash
# The full mixed load of tests/load: FTP_CLIENTS FTP sessions and HTTP_CLIENTS HTTP clients for
# SECONDS on a release build (defaults 500, 500, 60). Prints the totals as JSON: operations,
# conflicts, errors, bodies that were not one complete version, the server's peak RSS.
#   bench/load.sh [FTP_CLIENTS] [HTTP_CLIENTS] [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N_FTP=${1:-500}; N_HTTP=${2:-500}; SECS=${3:-60}
cargo build --release -p filegate --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$ROOT/target/release/filegate"
WORK="$(mktemp -d)"
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
ulimit -n 65536 2>/dev/null || true
cat > "$WORK/load.toml" <<TOML
[ftp]
max_connections = 4096
max_connections_per_ip = 4096
[http]
max_connections = 4096
TOML
"$BIN" --config "$WORK/load.toml" --data-dir "$WORK/data" serve --ftp-addr 127.0.0.1:23741 \
  --passive-ports 24000-24999 --http-addr 127.0.0.1:23742 --admin-password load-pw \
  2>"$WORK/server.log" >/dev/null &
PID=$!
for _ in $(seq 1 100); do grep -q "filegate serving" "$WORK/server.log" && break; sleep 0.1; done
python3 "$ROOT/tests/load/load.py" 23741 23742 admin load-pw "$N_FTP" "$N_HTTP" "$SECS" "$PID"
