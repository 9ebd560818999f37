# bench/lib.sh: shared helpers of bench/run (sourced, not run): paths, the one-time
# set-up of the shared peers in a scratch copy, starting/stopping servers, and
# `measure`, which runs one load command and appends its RESULT line (plus server
# CPU seconds, load average and machine busy %) to the results file.
# shellcheck shell=bash
# shellcheck disable=SC2034  # LG, HDR_ARGS, ... are used by bench/run

CACHE=${BENCH_CACHE:-$HOME/.cache/switchboard}
PEERS_SRC=${PEERS_SRC:-$(cd "$BENCH_DIR/../.." && pwd)/shared/peers}
PEERS=$CACHE/peers                          # scratch copy of the read-only shared peers
SB_TARGET=${BENCH_TARGET:-$CACHE/bench-target}  # our own release target dir (BENCH_TARGET: one per worktree)
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
# them up there once: python venv, npm install, cargo build of limit + loadgen
# (`ensure_peers copy-only`: the copy alone, for runs that only need bench-http.sh).
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
  [ "${1:-}" = copy-only ] && return 0   # bench-http.sh and wrk/*.lua need no set-up
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

# --- servers ---------------------------------------------------------------------

STARTED_PIDS=()     # every server we started, stopped by stop_all on exit

wait_port() { # PORT: wait up to 30 s for a listener
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_peer NAME [ARGS...] -> PORT, SERVER_PID (the run script execs the server)
start_peer() {
  local name=$1; shift
  PORT=$((NEXT_PORT += 1))
  SERVER_CPUS=$SERVER_CPU "$PEERS/run-$name.sh" "$PORT" "$@" >>"$RUN_DIR/$name.log" 2>&1 &
  SERVER_PID=$!; STARTED_PIDS+=("$SERVER_PID")
  wait_port "$PORT" || { log "!! $name did not open port $PORT (see $RUN_DIR/$name.log)"; return 1; }
  sleep 1   # let uvicorn/gunicorn workers finish booting
}

# pristine_db USERS -> path of a seeded database kept in the cache (made once per
# migrations version), copied for every server start so each starts from the same state
pristine_db() {
  local users=$1 key dir
  key=$(cd "$BENCH_DIR/.." && find migrations -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-12)
  dir=$CACHE/bench-db/$key; mkdir -p "$dir"
  if [ ! -f "$dir/users-$users.db" ]; then
    log "seeding $users users into $dir/users-$users.db (once)"
    rm -f "$dir/tmp-$users.db"*
    nice -n 10 "$SB_BIN" seed --users "$users" --database-url "sqlite://$dir/tmp-$users.db" --log warn >&2
    mv "$dir/tmp-$users.db" "$dir/users-$users.db"
    rm -f "$dir/tmp-$users.db"*
  fi
  echo "$dir/users-$users.db"
}

# pristine_pg USERS -> URL of a PostgreSQL database (on BENCH_PG, the machine's server
# by default) holding USERS synthetic users, made once per migrations version by the
# server itself (bench/pg_seed.sql: one INSERT ... generate_series, then its names keyed
# by `switchboard migrate` and ANALYZE) and
# kept between runs. Servers on it do not write users (the pg section has no POST), so
# every start sees the same data.
pristine_pg() {
  local users=$1 key db base url
  key=$(cd "$BENCH_DIR/.." && find migrations -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-12)
  base=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
  db=sb_bench_${key}_$users; url=$base/$db
  if [ "$(psql -Atq "$base/postgres" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    log "seeding $users users into PostgreSQL database $db (once)"
    PGOPTIONS="-c client_min_messages=warning" psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS ${db}_tmp" -c "CREATE DATABASE ${db}_tmp" >&2
    "$SB_BIN" migrate --database-url "$base/${db}_tmp" --log warn >&2
    local t0=$SECONDS
    psql -q -v ON_ERROR_STOP=1 -v n="$users" -f "$BENCH_DIR/pg_seed.sql" "$base/${db}_tmp" >&2
    # The seed's names are keyed by case only; the server keys them as it would
    # (accents folded, see pg_seed.sql), then the planner gets its statistics.
    "$SB_BIN" migrate --database-url "$base/${db}_tmp" --log warn >&2
    psql -q "$base/${db}_tmp" -c "VACUUM ANALYZE users" >&2
    log "  seeded in $((SECONDS - t0)) s"
    psql -q "$base/postgres" -c "ALTER DATABASE ${db}_tmp RENAME TO $db" >&2
  fi
  echo "$url"
}

# same_users SQLITE_DB PG_URL: warns (never fails) when the two seeds differ, i.e. when
# bench/pg_seed.sql no longer makes the users src/directory/synthetic.rs makes
same_users() {
  local q="SELECT name || '|' || email FROM users WHERE email LIKE '%@example.test' ORDER BY id"
  command -v sqlite3 >/dev/null || return 0
  if ! cmp -s <(sqlite3 "$1" "$q") <(psql -Atq "$2" -c "$q"); then
    log "!! the PostgreSQL seed differs from SQLite's: update bench/pg_seed.sql to match synthetic.rs"
  fi
}

# start_switchboard USERS [pg] -> PORT, SERVER_PID, AUTH_HEADERS (lines), HDR_ARGS (loadgen)
# (pg: on the PostgreSQL database of pristine_pg instead of a copy of the SQLite one)
start_switchboard() {
  local users=$1 backend=${2:-sqlite} src db url jar cookies csrf
  PORT=$((NEXT_PORT += 1))
  if [ "$backend" = pg ]; then
    url=$(pristine_pg "$users")
  else
    src=$(pristine_db "$users")
    db=$RUN_DIR/switchboard-$PORT.db
    cp "$src" "$db"; SB_DB=$db; url=sqlite://$db
  fi
  # realtime limits as environment variables (a binary without the hub ignores them):
  # no caps on sends and connections, and a per-connection queue of 4096 deliveries,
  # the capacity of limit's broadcast channel (the default 256 closes the burst
  # phase's sender as a slow consumer)
  SWITCHBOARD_ADMIN_PASSWORD=$ADMIN_PW SWITCHBOARD_REALTIME_SEND_PER_SECOND=$BIG \
  SWITCHBOARD_REALTIME_CONNECTIONS_PER_USER=$BIG SWITCHBOARD_REALTIME_CONNECTIONS_PER_IP=$BIG \
  SWITCHBOARD_REALTIME_QUEUE=${SB_REALTIME_QUEUE:-4096} \
    taskset -c "$SERVER_CPU" "$SB_BIN" serve \
    --bind "127.0.0.1:$PORT" --database-url "$url" \
    --rate-login-per-minute 1000 --rate-search-per-second "$BIG" \
    --rate-write-per-second "$BIG" --rate-general-per-second "$BIG" \
    --log warn >>"$RUN_DIR/switchboard.log" 2>&1 &
  SERVER_PID=$!; STARTED_PIDS+=("$SERVER_PID")
  wait_port "$PORT" || { log "!! switchboard did not open port $PORT (see $RUN_DIR/switchboard.log)"; return 1; }
  jar=$RUN_DIR/cookies-$PORT.txt
  curl -sf -c "$jar" -o /dev/null -H 'Content-Type: application/json' -H "Origin: http://127.0.0.1:$PORT" \
    -d "{\"email\":\"admin@example.com\",\"password\":\"$ADMIN_PW\"}" "http://127.0.0.1:$PORT/api/auth/login" \
    || { log "!! login failed on switchboard :$PORT"; return 1; }
  # every cookie of the jar (the session cookie and csrftoken), as a browser sends them
  cookies=$(awk 'NF >= 7 && ($1 !~ /^#/ || $1 ~ /^#HttpOnly_/) {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$jar")
  csrf=$(awk '$6 == "csrftoken" {print $7}' "$jar")
  AUTH_HEADERS="Cookie: $cookies"$'\n'"Origin: http://127.0.0.1:$PORT"$'\n'"X-CSRFToken: $csrf"
  HDR_ARGS=(--header "Cookie: $cookies" --header "Origin: http://127.0.0.1:$PORT" --header "X-CSRFToken: $csrf")
}

stop_server() { # stops SERVER_PID and its children (uvicorn/gunicorn workers)
  local pid=${1:-$SERVER_PID} kids
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  # shellcheck disable=SC2086
  kill -9 "$pid" $kids 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -n "${SB_DB:-}" ] && [ "$pid" = "$SERVER_PID" ]; then rm -f "$SB_DB" "$SB_DB-wal" "$SB_DB-shm"; SB_DB=""; fi
  sleep 1
}

stop_all() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && stop_server "$pid"; done
  return 0
}

# route_status PATH: the HTTP status switchboard answers on PATH (logged in); a
# streaming answer counts by its status line, so 2 s are enough
route_status() {
  local hdr=() h
  while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done <<<"$AUTH_HEADERS"
  curl -s -o /dev/null -m 2 -w '%{http_code}' "${hdr[@]}" "http://127.0.0.1:$PORT$1" || true
}

# --- measuring -------------------------------------------------------------------

loadavg1() { cut -d' ' -f1 /proc/loadavg; }
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

tree_pids() { echo "$SERVER_PID" "$(pgrep -P "$SERVER_PID" 2>/dev/null | tr '\n' ' ')"; }

tree_ticks() { # CPU ticks (1/100 s) used so far by the server and its children
  local t=0 p f
  for p in $(tree_pids); do
    read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    [ ${#f[@]} -gt 12 ] && t=$((t + f[11] + f[12]))
  done
  echo "$t"
}

tree_rss_kb() { # VmRSS summed over the server and its children
  local t=0 p r
  for p in $(tree_pids); do
    r=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
    t=$((t + ${r:-0}))
  done
  echo "$t"
}

# record SERVER SECTION SCENARIO EXTRA_JSON < output: one JSON line per RESULT/HTTPRESULT
record() {
  local server=$1 section=$2 scenario=$3 extra=$4 line j
  while IFS= read -r line; do
    case $line in
      RESULT\ *|HTTPRESULT\ *)
        j=${line#* }
        printf '{"server":"%s","section":"%s","scenario":"%s","rep":%s,%s,"result":%s}\n' \
          "$server" "$section" "$scenario" "$REP" "$extra" "$j" >>"$RESULTS"
        log "  -> $server $scenario: ${j:0:200}" ;;
    esac
  done
}

# measure SERVER SECTION SCENARIO -- command...: runs it (bounded by `timeout`), and
# records its result with the load average, machine busy % and server CPU seconds
measure() {
  local server=$1 section=$2 scenario=$3; shift 4
  local la b0 t0 b1 t1 c0 c1 w0 w1 tmp extra
  la=$(loadavg1); read -r b0 t0 < <(cpu_busy)
  c0=$(tree_ticks); w0=$(date +%s.%N)
  tmp=$(mktemp)
  if declare -F "$1" >/dev/null; then   # our own shell function, bounded by itself
    "$@" >"$tmp" 2>>"$RUN_DIR/load.log" || log "  !! $server $scenario: load command failed"
  else
    timeout "$MEASURE_MAX_S" "$@" >"$tmp" 2>>"$RUN_DIR/load.log" || log "  !! $server $scenario: load command failed ($?)"
  fi
  c1=$(tree_ticks); w1=$(date +%s.%N)
  read -r b1 t1 < <(cpu_busy)
  extra=$(awk -v la="$la" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "\"loadavg\":%s,\"machine_busy_pct\":%.1f,\"server_cpu_s\":%.2f,\"wall_s\":%.2f", la, (t1>t0 ? 100*(b1-b0)/(t1-t0) : 0), (c1-c0)/100, w1-w0 }')
  record "$server" "$section" "$scenario" "$extra" <"$tmp"
  rm -f "$tmp"
}

skip() { # SERVER SECTION SCENARIO REASON: a scenario that could not run, with why
  log "  SKIP $1 $3: $4"
  printf '{"server":"%s","section":"%s","scenario":"%s","rep":%s,"skipped":"%s"}\n' "$1" "$2" "$3" "$REP" "$4" >>"$RESULTS"
}
