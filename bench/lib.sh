# bench/lib.sh: shared helpers of bench/run (sourced, not run): paths, the one-time
# set-up of the shared peers in a scratch copy, starting/stopping servers, and
# `measure`, which runs one load command and appends its RESULT line (plus server
# CPU seconds, load average and machine busy %) to the results file.
# shellcheck shell=bash

CACHE=${BENCH_CACHE:-$HOME/.cache/switchboard}
PEERS_SRC=${PEERS_SRC:-$(cd "$BENCH_DIR/../.." && pwd)/shared/peers}
PEERS=$CACHE/peers                          # scratch copy of the read-only shared peers
SB_TARGET=$CACHE/bench-target               # our own release target dir
SB_BIN=$SB_TARGET/release/switchboard
LG=$PEERS/target/release/loadgen
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
NEXT_PORT=${BASE_PORT:-18700}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- set-up (idempotent) -------------------------------------------------------

ensure_wrk() {
  command -v wrk >/dev/null && return 0
  log "installing wrk (apt-get)"
  apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
}

# Copy the shared peers to $PEERS (refreshed when the shared copy changes) and set
# them up there once: python venv, npm install, cargo build of limit + loadgen.
ensure_peers() {
  mkdir -p "$CACHE"
  local stamp; stamp=$(cd "$PEERS_SRC" && find . -path ./results -prune -o -type f -print0 \
    | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
  if [ ! -f "$PEERS/.bench-copied-$stamp" ]; then
    log "copying $PEERS_SRC -> $PEERS"
    mkdir -p "$PEERS"
    # keep .venv, node_modules and target: only the sources are refreshed
    (cd "$PEERS_SRC" && tar cf - --exclude=./results --exclude=./.venv --exclude=./node_modules --exclude=./target .) \
      | (cd "$PEERS" && tar xf -)
    chmod -R u+w "$PEERS"
    rm -f "$PEERS"/.bench-copied-* "$PEERS/.bench-ready"
    touch "$PEERS/.bench-copied-$stamp"
  fi
  [ -f "$PEERS/.bench-ready" ] && return 0
  log "setting up peers in $PEERS (once)"
  if [ ! -x "$PEERS/.venv/bin/uvicorn" ] || [ ! -x "$PEERS/.venv/bin/gunicorn" ]; then
    python3 -m venv "$PEERS/.venv"
    "$PEERS/.venv/bin/pip" install -q fastapi 'uvicorn[standard]' email-validator jinja2 \
      flask gunicorn flask-socketio eventlet simple-websocket
  fi
  [ -d "$PEERS/node_modules/socket.io" ] || (cd "$PEERS" && npm install --no-audit --no-fund --silent)
  (cd "$PEERS" && nice -n 10 cargo build --release --quiet)
  touch "$PEERS/.bench-ready"
}

ensure_switchboard() {
  log "building switchboard (release, $SB_TARGET)"
  (cd "$BENCH_DIR/.." && CARGO_TARGET_DIR=$SB_TARGET nice -n 10 cargo build --release --locked --quiet)
}
