#!/usr/bin/env bash
# Measures filegate (FTP and HTTP, one release process) beside vsftpd, pure-ftpd and nginx with
# the shared harness (../shared/bench), all in one run.
#
#   bench/peers.sh [--quick] [bench.py args...]      e.g. --only small,conc,idle
#   FTP_PORT=23731 HTTP_PORT=23790 PASSIVE_PORTS=23732-23778 bench/peers.sh ...  (other ports)
#   bench/peers.sh --floor --only small --small-count 5000   (adds ftp_floor as a target)
#
# It builds the release binary, starts the peers (installing them on first use), starts filegate
# on ports 23721 (FTP, passive 23722-23999) and 23780 (HTTP) on a fresh store with the harness's
# user (benchftp / benchpass, home /), runs bench.py with filegate first (ratios are relative to
# it), and writes bench/results/peers-<date>.{md,json}. Needs root (apt-get, a local user).
# --floor also runs bench/src/bin/ftp_floor.rs, the minimal FTP responder, on
# the peers' store (ports 23741/23742), listed after the peers so that their fixtures exist: the
# floor of server CPU per small download on this machine. It serves one session at a time and
# small files only, so without --only the run is limited to workloads small and wire.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BASE="${BENCH_BASE:-/tmp/filegate-bench}"
DATA="$BASE/filegate-data"
OUT="$HERE/results"
FTP_PORT="${FTP_PORT:-23721}"
HTTP_PORT="${HTTP_PORT:-23780}"
PASSIVE="${PASSIVE_PORTS:-23722-23999}"
# --floor may come anywhere; everything else goes to bench.py.
FLOOR=""
ONLY=""
ARGS=()
for a in "$@"; do
  case "$a" in
    --floor) FLOOR=1 ;;
    --only | --only=*) ONLY=1; ARGS+=("$a") ;;
    *) ARGS+=("$a") ;;
  esac
done
stamp="$(date -u +%Y%m%dT%H%M)"
mkdir -p "$OUT" "$BASE"

cargo build --release -p filegate --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/filegate"
if [ -n "$FLOOR" ]; then
  cargo build --release -p filegate-bench --bin ftp_floor --manifest-path "$ROOT/Cargo.toml"
fi

if [ ! -x "$BASE/pureftpd/usr/sbin/pure-ftpd" ] || ! command -v vsftpd >/dev/null || ! command -v nginx >/dev/null; then
  "$SHARED/peers/peers.sh" install
fi
[ -x "$BASE/run/subreaper" ] || "$SHARED/peers/peers.sh" setup
"$SHARED/peers/peers.sh" start >/dev/null 2>&1 || "$SHARED/peers/peers.sh" start

rm -rf "$DATA"
echo benchpass | "$BIN" --data-dir "$DATA" user add benchftp --home / --perms all >/dev/null
"$BIN" --data-dir "$DATA" serve --ftp-addr 127.0.0.1:$FTP_PORT --passive-ports $PASSIVE \
  --http-addr 127.0.0.1:$HTTP_PORT --admin-password "$(head -c 12 /dev/urandom | base64)" \
  2>"$BASE/filegate.log" >/dev/null &
PID=$!
FLOOR_PID=""
trap 'kill -TERM $PID $FLOOR_PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
if [ -n "$FLOOR" ]; then
  "$ROOT/target/release/ftp_floor" --root "$BASE/store" --port 23741 --passive 23742 \
    2>"$BASE/ftp_floor.log" &
  FLOOR_PID=$!
  ARGS+=(--ftp floor=127.0.0.1:23741:any:any --pid floor=$FLOOR_PID)
  # One session at a time, small files only: the floor can't take part in the other workloads.
  [ -n "$ONLY" ] || ARGS+=(--only small,wire)
fi
for _ in $(seq 1 100); do grep -q "filegate serving" "$BASE/filegate.log" && break; sleep 0.1; done
grep -q "filegate serving" "$BASE/filegate.log" || { cat "$BASE/filegate.log"; exit 1; }

cd "$SHARED"
# shellcheck disable=SC2046
python3 bench.py \
  --ftp filegate-ftp=127.0.0.1:$FTP_PORT:benchftp:benchpass --pid filegate-ftp=$PID \
  --http filegate-http=http://benchftp:benchpass@127.0.0.1:$HTTP_PORT/ --pid filegate-http=$PID \
  $(peers/peers.sh args) \
  --json "$OUT/peers-$stamp.json" --md "$OUT/peers-$stamp.md" ${ARGS[@]+"${ARGS[@]}"}
echo "results: $OUT/peers-$stamp.md"
