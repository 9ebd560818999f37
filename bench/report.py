#!/usr/bin/env python3
"""bench/report.py: turns one bench/run results file (JSON lines) into bench/REPORT.md
on stdout. Owns the report's layout, the ratios and the target checks of issue 6.
Cells are medians over repetitions. Standard library only.

usage: report.py [--keep OLD.md] RESULTS.jsonl [MORE.jsonl ...] > REPORT.md   (several files
       are merged; --keep carries over the sections of OLD.md that bench/run does not
       write: those measured by tests or A/B runs, see KEPT_MARK)
       report.py --splice REPORT.md RESULTS.jsonl > NEW.md   (the sections of SPLICED that
       RESULTS measured replace theirs in REPORT.md; the rest is kept as it was)
"""
import json
import os
import re
import statistics
import sys
from collections import defaultdict

PEERS_HTTP = ["limit", "seed-fastapi", "seed-flask"]
HTTP_TESTS = [
    ("get1", "GET /api/users/1", "get1"),
    ("hello", "GET /api/hello (no query of its own; the session lookup still runs)", "get1"),
    ("list", "GET /api/users", "list"),
    ("search", "GET /api/users?search=al", "search"),
    ("search_api", "GET /api/search?q=al", "search"),
    ("autocomplete", "GET /api/autocomplete?q=al", "search"),
    ("post", "POST /api/users", "post"),
]
ALL_SECTIONS = ["http", "http1m", "pg", "profile", "ws", "idle", "sse", "longpoll"]
SPLICED = {"pg": "## PostgreSQL beside SQLite"}   # sections --splice can replace alone
# A section whose first paragraph says so is not bench/run's (a test measured it, or an
# A/B run): a regenerated report (--keep) carries it over as it was, after the notes.
KEPT_MARK = "`bench/run` keeps this section as it is"
SECTION_TITLES = {
    "http": "HTTP at 1,000 users", "http1m": "HTTP at 1,000,000 users",
    "pg": "PostgreSQL beside SQLite", "profile": "Profile under HTTP load",
    "ws": "WebSocket fan-out",
    "idle": "Memory per idle connection", "sse": "SSE clients", "longpoll": "Long-poll wake latency",
}

METHOD = """
## How the figures were taken

- **One command**: `bench/run` (sections `http http1m pg profile ws idle sse longpoll`; `QUICK=1` for short
  runs, `REPS=N` for repetitions, peers interleaved within each). It builds
  `cargo build --release --locked` into `~/.cache/switchboard/bench-target` (under `nice`), and
  copies `../shared/peers` to `~/.cache/switchboard/peers`, set up there once (venv, `npm install`,
  `cargo build --release` of `limit` and `loadgen`). The load tools are the peers' own:
  `bench-http.sh` (wrk + its Lua scripts) and `loadgen`.
- **Pinning**: every server runs under `taskset -c 1` (tokio then runs one worker thread, as
  `limit` does); wrk and loadgen under `taskset -c 0`. Everything is on 127.0.0.1, and every load
  command is bounded in time and count (and by `timeout 600`).
- **Switchboard**: the release binary, `serve --database-url sqlite://<scratch copy>`, the copy
  made from a database seeded once with `switchboard seed --users 1000` (or `1000000`) and kept in
  `~/.cache/switchboard/bench-db/`, so every server start sees the same data. Rate limits raised to
  10^9 per second (the limiter still runs on every request), `--log warn`; the hub's caps on
  connections per account/address and sends per second raised the same way, and its per-connection
  queue set to 4,096 deliveries (`SWITCHBOARD_REALTIME_QUEUE`, the capacity of `limit`'s broadcast
  channel; with the default 256 the burst phase closes the sender as a slow consumer;
  `SB_REALTIME_QUEUE=256 bench/run ws` measures the default). The harness logs in as
  the admin (`POST /api/auth/login`) and sends `Cookie: session=..; csrftoken=..`, `Origin` and
  `X-CSRFToken` on every request, so each request pays for the session lookup and all middleware.
- **HTTP**: per server, a warm-up, then one `wrk -t1 -c64` run per test (10 s; 3 s in QUICK runs)
  through `bench-http.sh`. POSTs create a unique user each (`wrk/post_user.lua`). Server CPU
  seconds come from `/proc/PID/stat` (the server and its workers) around each run;
  **req per CPU-s** = requests ÷ server CPU seconds. Ratios are taken against peers measured in
  the same run. The peers: `limit` (bare axum, constant answers), `seed-fastapi` (uvicorn, 2
  workers), `seed-flask` (gunicorn gthread, 5×4), all pinned to the same one core.
- **PostgreSQL beside SQLite** (`bench/run pg`): the reads of the HTTP table plus searches for a pair
  most users have, one 2% have, one nobody has and a rare trigram, 5 s each (2 s QUICK), against
  Switchboard on a SQLite copy and on PostgreSQL (`BENCH_PG`, default the machine's server) at 1,000
  and 1,000,000 users, all in one run. The PostgreSQL databases are made once per migrations
  version (`sb_bench_<hash>_<users>`, kept) by `switchboard migrate` and `bench/pg_seed.sql`: one
  server-side `INSERT ... generate_series` of the same synthetic people, then `ANALYZE`. Run alone,
  the section replaces only its own part of `REPORT.md` (`report.py --splice`).
- **WebSocket fan-out**: `loadgen ws` with N = 100, 1,000, 10,000 (100 and 1,000 in QUICK runs;
  the Python peers only up to 1,000, node without its O(N²) join storm above 1,000, as
  `peers/BASELINE.md`). Switchboard: `/ws` with handshake `{"type":"join","room":"bench"}` and
  send `{"type":"send","room":"bench","text":"{payload}"}`, and `/socket.io/?EIO=4&transport=websocket`
  with `42["join",{"username":"u{i}"}]` / `42["message",{"message":"{payload}"}]`.
- **Idle memory**: `loadgen idle` (WebSocket) with 1,000 connections held 3 s; for SSE, `loadgen sse`
  holds 1,000 streams while the harness reads the server's VmRSS once all are established.
  Switchboard is measured joined to room `bench` (each join updates the room's presence for
  every member) and, for comparison with `limit`, with no room (`/ws` without a join, `/stream`).
- **Profile**: `perf record -F 999 -g -p <server>` for 8 s (3 s QUICK) during a `wrk -t1 -c64` run
  of GET /api/users/1 and of POST, summarised by `bench/perf_summary.py`. Slow statements: the
  server's own `sqlx` warnings (over 1 s) from its log during the run.
- **SSE**: `loadgen sse` for 30 s (5 s QUICK) with 10,000 clients (2,000 QUICK) on
  `/api/rooms/bench/events` while the harness posts a message to the room each second, and on
  `/stream`; a client counts as served when its 200 arrived within that window. Peers, 10 s
  (5 s QUICK): seed-flask `/stream` with 100, seed-fastapi `/api/stream` with 1,000.
- **Long-poll**: `loadgen longpoll` (100 wakes, so the p99 is not simply the maximum; 5 QUICK), a POST `/api/send` 50–550 ms after the poll
  starts; seed-flask on one worker (its messages are per process).
- **Skips**: before each realtime scenario the harness asks Switchboard for the route; a 404 records
  the scenario as skipped (pending) instead of measuring it.
- **Noise**: the machine is shared, so req/s and latencies swing (see `peers/BASELINE.md`: ±12–75%
  between repetitions). Compare within one run; per-CPU-second figures and ratios are steadier.
  Raw results: `bench/results/<run>/results.jsonl` (git-ignored), with the logs.
- **Outages** (issue 18: Redis, PostgreSQL or an instance down) are measured by the fault suite
  (`cargo test --test faults -- --nocapture`), not here: `bench/OUTAGES.md`.
"""

def load(paths):
    """Merges results files: rows from all, one meta per file (the first is the main run)."""
    metas, rows = [], []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                obj = json.loads(line)
                if "meta" in obj:
                    metas.append(obj["meta"])
                else:
                    rows.append(obj)
    return metas, rows


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, unit=""):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def pct(a, b):
    return None if a is None or not b else 100.0 * a / b


class Results:
    def __init__(self, rows):
        self.by = defaultdict(list)   # (section, server, scenario) -> rows measured
        self.skips = {}               # (section, server, scenario) -> reason
        for r in rows:
            key = (r["section"], r["server"], r["scenario"])
            if "skipped" in r:
                self.skips[key] = r["skipped"]
            else:
                self.by[key].append(r)

    def get(self, section, server, scenario, fn):
        return med([fn(r) for r in self.by.get((section, server, scenario), [])])

    def has(self, section, server=None):
        return any(k[0] == section and (server is None or k[1] == server) for k in self.by)

    def servers(self, section):
        return sorted({k[1] for k in self.by if k[0] == section})

    def skipped(self, section):
        return sorted((k[1], k[2], v) for k, v in self.skips.items() if k[0] == section)


def per_cpu(r):
    cpu = r.get("server_cpu_s") or 0
    return r["result"]["requests"] / cpu if cpu > 0 else None


def http_cell(res, section, server, test):
    return {
        "rps": res.get(section, server, test, lambda r: r["result"]["rps"]),
        "p50": res.get(section, server, test, lambda r: r["result"]["p50_ms"]),
        "p99": res.get(section, server, test, lambda r: r["result"]["p99_ms"]),
        "cpu": res.get(section, server, test, per_cpu),
        "bad": res.get(section, server, test, lambda r: r["result"]["non2xx"] + r["result"]["err_connect"]
                       + r["result"]["err_read"] + r["result"]["err_write"] + r["result"]["err_timeout"]),
        "busy": res.get(section, server, test, lambda r: r["server_cpu_s"] / r["wall_s"] if r["wall_s"] else None),
    }


def http_section(res, out):
    if not res.has("http"):
        return
    out.append("## HTTP at 1,000 users\n")
    servers = ["switchboard"] + [p for p in PEERS_HTTP if res.has("http", p)]
    out.append("Requests/s, latency p50 / p99 ms (wrk -t1 -c64), and requests per server CPU-second "
               "(the figure that survives other tenants on this machine).\n")
    out.append("| test | " + " | ".join(servers) + " |")
    out.append("|---|" + "---:|" * len(servers))
    for test, label, _ in HTTP_TESTS:
        cells = []
        for s in servers:
            c = http_cell(res, "http", s, test)
            if c["rps"] is None:
                cells.append("–")
                continue
            bad = f" **{fmt(c['bad'])} errors/non-2xx**" if c["bad"] else ""
            cells.append(f"{fmt(c['rps'])}/s ({fmt(c['p50'], 2)} / {fmt(c['p99'], 2)}); "
                         f"{fmt(c['cpu'])} per CPU-s{bad}")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")
    peers = [p for p in PEERS_HTTP if res.has("http", p)]
    if peers:
        out.append("Switchboard's requests per server CPU-second as a share of each peer's on the same kind of "
                   "request, same run (search and autocomplete are set against the peers' "
                   "`GET /api/users?search=al`; `limit` answers constants, the seed apps scan a 3-user list):\n")
        out.append("| test | " + " | ".join(f"vs {p}" for p in peers) + " |")
        out.append("|---|" + "---:|" * len(peers))
        for test, label, peer_test in HTTP_TESTS:
            sb = http_cell(res, "http", "switchboard", test)["cpu"]
            if sb is None:
                continue
            cells = [fmt(pct(sb, http_cell(res, "http", p, peer_test)["cpu"]), 1, "%") for p in peers]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")


def http1m_section(res, out):
    if not res.has("http1m"):
        return
    out.append("## HTTP at 1,000,000 users\n")
    out.append("Switchboard only (the peers keep their users in a Python list). Ratios are to the same test "
               "at 1,000 users in this run.\n")
    out.append("| test | req/s | p50 ms | p99 ms | req per CPU-s | p99 vs 1k users | req per CPU-s vs 1k |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for test, label, _ in HTTP_TESTS:
        c = http_cell(res, "http1m", "switchboard", test)
        if c["rps"] is None:
            continue
        k = http_cell(res, "http", "switchboard", test)
        ratio = f"{c['p99'] / k['p99']:.2f}x" if k["p99"] else "–"
        bad = f" (**{fmt(c['bad'])} errors/non-2xx**)" if c["bad"] else ""
        out.append(f"| {label}{bad} | {fmt(c['rps'])} | {fmt(c['p50'], 2)} | {fmt(c['p99'], 2)} | {fmt(c['cpu'])} "
                   f"| {ratio} | {fmt(pct(c['cpu'], k['cpu']), 0, '%')} |")
    out.append("")


PG_TESTS = [
    ("get1", "GET /api/users/1"),
    ("list", "GET /api/users"),
    ("search", "GET /api/users?search=al (a pair in 12% of users)"),
    ("search_mid", "GET /api/users?search=øy (a pair in 2%)"),
    ("search_none", "GET /api/users?search=zq (a pair nobody has)"),
    ("search_tri", "GET /api/users?search=rossi.12 (trigrams)"),
    ("search_api", "GET /api/search?q=al"),
]


def pg_section(res, metas, out):
    if not res.has("pg"):
        return
    out.append(SPLICED["pg"] + "\n")
    meta = next((m for m in metas if "pg" in m.get("sections", [])), {})
    loads = [r["loadavg"] for k, rows in res.by.items() if k[0] == "pg" for r in rows]
    out.append(f"Measured in the run started {meta.get('started_utc', '?')} at commit `{meta.get('commit', '?')}`"
               f"{' (QUICK=1)' if meta.get('quick') else ''}: the same reads against Switchboard on SQLite and on "
               "PostgreSQL 15 (the machine's server, unpinned, sharing both cores with the load generator; "
               "synthetic users made by `bench/pg_seed.sql`, the same people as SQLite's), "
               f"wrk -t1 -c64. 1-min load average at each measurement: median "
               f"{fmt(med(loads), 2)} (range {fmt(min(loads), 2)}–{fmt(max(loads), 2)}); the machine was shared "
               "with other jobs, so compare within this table. Cells: req/s (p50 / p99 ms); "
               "**pg/sqlite** is PostgreSQL's p99 over SQLite's.\n")
    out.append("| test | SQLite 1k | PostgreSQL 1k | pg/sqlite 1k | SQLite 1M | PostgreSQL 1M | pg/sqlite 1M |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")

    def cell(server, scenario):
        c = http_cell(res, "pg", server, scenario)
        if c["rps"] is None:
            return c, "–"
        bad = f" **{fmt(c['bad'])} errors/non-2xx**" if c["bad"] else ""
        return c, f"{fmt(c['rps'])}/s ({fmt(c['p50'], 2)} / {fmt(c['p99'], 2)}){bad}"

    for test, label in PG_TESTS:
        cells = []
        for users in ("1000", "1000000"):
            sq, sq_text = cell("switchboard", f"{test}@{users}")
            pg, pg_text = cell("switchboard-pg", f"{test}@{users}")
            ratio = f"{pg['p99'] / sq['p99']:.2f}x" if pg["p99"] and sq["p99"] else "–"
            cells += [sq_text, pg_text, ratio]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")


def splice(report_path, metas, res):
    """The report at report_path with each SPLICED section that res measured replaced
    (or, when absent, put before the method notes)."""
    lines = open(report_path).read().rstrip("\n").split("\n")
    for section, heading in SPLICED.items():
        block = []
        globals()[f"{section}_section"](res, metas, block)
        if not block:
            continue
        if heading in lines:
            start = lines.index(heading)
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            lines[start:end] = block
        else:
            at = next((i for i, l in enumerate(lines) if l.startswith("## How the figures were taken")), len(lines))
            lines[at:at] = block
    return "\n".join(lines)


def first_paragraph(lines):
    """The first paragraph of lines, on one line."""
    words = []
    for line in lines:
        if not line.strip():
            if words:
                break
            continue
        words += line.split()
    return " ".join(words)


def kept_sections(report_path):
    """The sections of the report at report_path that bench/run did not write (KEPT_MARK)."""
    if not report_path or not os.path.exists(report_path):
        return []
    lines = open(report_path).read().rstrip("\n").split("\n")
    starts = [i for i, l in enumerate(lines) if l.startswith("## ")] + [len(lines)]
    kept = []
    for start, end in zip(starts, starts[1:]):
        if KEPT_MARK in first_paragraph(lines[start + 1:end]):
            section = lines[start:end]
            while not section[-1].strip():
                section.pop()
            kept += [""] + section
    return kept


def profile_section(res, out):
    if not res.has("profile"):
        return
    out.append("## Profile of Switchboard under HTTP load\n")
    out.append("`perf record -F 999 -g` of the server process during a `wrk -t1 -c64` run at 1,000 users "
               "(`bench/perf_summary.py`; raw `perf.data` in the run's results directory). Shares are of all "
               "samples; \"incl.\" counts time in the frame and everything it calls.\n")
    for test, label in (("get1", "GET /api/users/1"), ("post", "POST /api/users")):
        rows = res.by.get(("profile", "switchboard", test))
        if not rows:
            continue
        p = rows[-1]["result"]
        threads = ", ".join(f"{k} {v:.0f}%" for k, v in p["samples_by_thread"].items())
        binaries = ", ".join(f"{k} {v:.0f}%" for k, v in p["samples_by_binary"].items() if v >= 1)
        kernel = ", ".join(f"`{k}` {v:.0f}%" for k, v in p.get("kernel_frames", {}).items())
        out.append(f"**{label}** — threads: {threads}; binaries: {binaries}; kernel: {kernel} (incl.).\n")
        out.append("| user-space frame | incl. | self |")
        out.append("|---|---:|---:|")
        for name, incl, self_pct in p["top_user_frames"]:
            if re.fullmatch(r"(0x)?[0-9a-f]+", name):
                continue                  # an unresolved address
            out.append(f"| `{name}` | {incl:.1f}% | {self_pct:.1f}% |")
        out.append("")


def profile_note(res, test):
    rows = res.by.get(("profile", "switchboard", test))
    if not rows:
        return ""
    p = rows[-1]["result"]
    futex = p.get("kernel_frames", {}).get("__x64_sys_futex")
    kernel = p["samples_by_binary"].get("[kernel.kallsyms]")
    sqlite_thread = next((v for k, v in p["samples_by_thread"].items() if k.startswith("sqlx-sqlite")), None)
    parts = []
    if kernel is not None:
        parts.append(f"{kernel:.0f}% of server samples in the kernel")
    if futex is not None:
        parts.append(f"{futex:.0f}% in futex waits/wakes")
    if sqlite_thread is not None:
        parts.append(f"{sqlite_thread:.0f}% on sqlx's SQLite worker thread")
    return "; profile: " + ", ".join(parts) + " (see Profile)" if parts else ""


def slow_statements(results_path, out):
    """The server's sqlx 'slow statement' warnings during the run, grouped by statement."""
    log = os.path.join(os.path.dirname(results_path), "switchboard.log")
    if not os.path.exists(log):
        return
    seen = defaultdict(list)
    for line in open(log, errors="replace"):
        if "slow statement" not in line:
            continue
        m = re.search(r'summary="([^"]*)".*?elapsed_secs=([\d.]+)', line)
        if m:
            seen[m.group(1)].append(float(m.group(2)))
    if not seen:
        return
    run = os.path.basename(os.path.dirname(os.path.abspath(results_path)))
    out.append(f"## Slow statements the server logged during run {run}\n")
    out.append("sqlx warns when one statement takes over 1 s; these come from `switchboard.log` of the run "
               "(seeding included).\n")
    out.append("| statement (sqlx summary) | times | max s |")
    out.append("|---|---:|---:|")
    for stmt, secs in sorted(seen.items(), key=lambda kv: -len(kv[1])):
        out.append(f"| `{stmt}` | {len(secs)} | {max(secs):.2f} |")
    out.append("")


def ws_phase(r, i):
    ph = r["result"].get("phases", [])
    return ph[i] if len(ph) > i else None


def ws_rows(res):
    """(server, scenario, n) for every measured fan-out run, in a stable order."""
    keys = [k for k in res.by if k[0] == "ws"]
    order = {"switchboard": 0, "limit": 1, "node-socketio": 2, "seed-fastapi": 3, "seed-socketio": 4}

    def n_of(scn):
        return int(scn.rsplit("-", 1)[1])
    return sorted(((k[1], k[2].rsplit("-", 1)[0], n_of(k[2])) for k in keys),
                  key=lambda t: (t[2], order.get(t[0], 9), t[1]))


def ws_metrics(res, server, scn, n):
    key = f"{scn}-{n}"

    def deliveries_per_cpu(r):
        b = ws_phase(r, 1)
        return b["delivered"] / b["server_cpu_s"] if b and b.get("server_cpu_s") else None
    return {
        "connected": res.get("ws", server, key, lambda r: r["result"]["connected"]),
        "settle": res.get("ws", server, key, lambda r: r["result"]["connect_s"] + r["result"]["settle_s"]),
        "a_p50": res.get("ws", server, key, lambda r: (ws_phase(r, 0) or {}).get("p50_ms")),
        "a_p99": res.get("ws", server, key, lambda r: (ws_phase(r, 0) or {}).get("p99_ms")),
        "dps": res.get("ws", server, key, lambda r: (ws_phase(r, 1) or {}).get("deliveries_per_s")),
        "dpc": res.get("ws", server, key, deliveries_per_cpu),
        "loss": res.get("ws", server, key, lambda r: max(p["loss_pct"] for p in r["result"]["phases"])
                        if r["result"].get("phases") else None),
        "closed": res.get("ws", server, key, lambda r: r["result"].get("closed_early", 0) + r["result"].get("failed", 0)),
    }


def ws_section(res, out):
    if not res.has("ws"):
        return
    out.append("## WebSocket fan-out\n")
    out.append("Client 0 sends; every client (the sender too) receives. Phase A: timestamped messages at 5/s, "
               "latency send→receive. Phase B: 200,000/N messages back to back (50,000/N in QUICK runs); "
               "deliveries/s over first send → last delivery, and deliveries per server CPU-second.\n")
    out.append("| server | framing | N | connected | connect+settle s | A: p50 / p99 ms | B: deliveries/s | "
               "B: per server CPU-s | loss | failed or closed early |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server, scn, n in ws_rows(res):
        m = ws_metrics(res, server, scn, n)
        out.append(f"| {server} | {'Socket.IO' if scn == 'sio' else 'raw JSON'} | {n:,} | {fmt(m['connected'])} | "
                   f"{fmt(m['settle'], 1)} | {fmt(m['a_p50'], 1)} / {fmt(m['a_p99'], 1)} | {fmt(m['dps'])} | "
                   f"{fmt(m['dpc'])} | {fmt(m['loss'], 2, '%')} | {fmt(m['closed'])} |")
    out.append("")
    out.append("Reading it: the server's CPU time is read in 10 ms ticks, so a burst that costs the server "
               "tens of milliseconds (all of `limit`'s, and N=100) has a per-CPU-s figure good to ±20% at best; "
               "`bench/ab REV` compares two commits on longer bursts, alternating them. Settling waits for a "
               "second with no frame, and Engine.IO pings are frames: when 10,000 Socket.IO clients take longer "
               "than the 25 s ping interval to connect (from 2 to 41 s between runs on 2026-12-07, for two "
               "commits of Switchboard and for node socket.io alike), their pings never leave a quiet second and "
               "connect+settle shows the loadgen's 240 s cap; phases A and B start after it all the same.\n")
    lossy = [f"{server} {scn} N={n:,}" for server, scn, n in ws_rows(res) if (ws_metrics(res, server, scn, n)["loss"] or 0) > 0]
    if lossy:
        out.append(f"Loss in: {', '.join(lossy)}. Deliveries/s and per-CPU-s count delivered messages only. "
                   "Switchboard's Socket.IO adapter queues at most 64 commands per socket and answers `error` to "
                   "each one past that (`COMMANDS` in `src/transport/socketio.rs`), so phase B's back-to-back "
                   "burst from one sender loses messages there by design (`/ws` has no such cap).\n")


def idle_section(res, out):
    if not res.has("idle"):
        return
    out.append("## Memory per idle connection\n")
    out.append("Server RSS growth (VmRSS, KiB, summed over its processes) divided by the open connections, "
               "1,000 connections held quiet for 3 s (handshake/join done).\n")
    out.append("| server | transport | KiB per connection | open |")
    out.append("|---|---|---:|---:|")
    for (section, server, scn) in sorted(k for k in res.by if k[0] == "idle"):
        kb = res.get("idle", server, scn, lambda r: r["result"]["kb_per_conn"])
        alive = res.get("idle", server, scn, lambda r: r["result"].get("alive", r["result"].get("open")))
        what = {"ws": "WebSocket", "sio": "WebSocket (Socket.IO)", "ws-nojoin": "WebSocket, no room joined",
                "sse": "SSE", "sse-stream": "SSE (/stream, no room)"}.get(scn, scn)
        if server == "switchboard" and scn in ("ws", "sse"):
            what += " in room `bench`" + (" (joined)" if scn == "ws" else "")
        out.append(f"| {server} | {what} | {fmt(kb, 1)} | {fmt(alive)} |")
    out.append("")


def sse_section(res, out):
    if not res.has("sse"):
        return
    out.append("## SSE clients\n")
    out.append("| server | stream | clients | got 200 | got events | events/s | first event p50 ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for (section, server, scn) in sorted(k for k in res.by if k[0] == "sse"):
        def g(f):
            return res.get("sse", server, scn, lambda r: r["result"][f])
        url = res.by[(section, server, scn)][0]["result"]["url"].split("/", 3)[-1]
        out.append(f"| {server} | /{url} | {fmt(g('n'))} | {fmt(g('ok'))} | {fmt(g('with_events'))} | "
                   f"{fmt(g('events_per_s'), 1)} | {fmt(g('first_event_p50_ms'), 1)} |")
    out.append("")


def longpoll_section(res, out):
    if not res.has("longpoll"):
        return
    out.append("## Long-poll wake latency\n")
    out.append("| server | wakes ok / missed | p50 ms | p99 ms | max ms | POST round trip p50 ms |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for server in res.servers("longpoll"):
        def g(f):
            return res.get("longpoll", server, "wake", lambda r: r["result"][f])
        out.append(f"| {server} | {fmt(g('ok'))} / {fmt(g('missed'))} | {fmt(g('p50_ms'), 1)} | {fmt(g('p99_ms'), 1)} | "
                   f"{fmt(g('max_ms'), 1)} | {fmt(g('post_rtt_p50_ms'), 2)} |")
    out.append("")


def targets(res, ran):
    """(target, measured, verdict) rows for the issue 6 targets."""
    rows = []

    def verdict(ok, miss):
        return "met" if ok else f"**missed**: {miss}"

    def pending(section, what):
        skips = res.skipped(section)
        if section not in ran:
            return "not run"
        if skips:
            return "pending: " + "; ".join(sorted({s[2] for s in skips})) + " (that transport is not on main yet)"
        return f"not measured ({what})"

    sb_get = http_cell(res, "http", "switchboard", "get1")["cpu"]
    lim_get = http_cell(res, "http", "limit", "get1")["cpu"]
    share = pct(sb_get, lim_get)
    if share is not None:
        rows.append(("GET /api/users/{id} ≥ 50% of limit's req per server CPU-s", f"{share:.1f}%",
                     verdict(share >= 50, f"{share:.1f}% is {50 - share:.1f} points short"
                             + profile_note(res, "get1"))))
    sb_post = http_cell(res, "http", "switchboard", "post")["cpu"]
    lim_post = http_cell(res, "http", "limit", "post")["cpu"]
    share = pct(sb_post, lim_post)
    if share is not None:
        rows.append(("POST /api/users ≥ 25% of limit's", f"{share:.1f}%",
                     verdict(share >= 25, f"{share:.1f}% is {25 - share:.1f} points short"
                             + profile_note(res, "post"))))
    for test, label in (("autocomplete", "Autocomplete"), ("search_api", "Search (/api/search)"),
                        ("search", "List with search"), ("list", "List, first page (not a stated target)")):
        big = http_cell(res, "http1m", "switchboard", test)["p99"]
        small = http_cell(res, "http", "switchboard", test)["p99"]
        if big is None:
            continue
        rows.append((f"{label} at 1M users: p99 < 10 ms at 64 connections", f"{big:.2f} ms",
                     verdict(big < 10, f"{big:.2f} ms is {big / 10:.1f}x the bound")))
        if small:
            r = big / small
            rows.append((f"{label}: p99 at 1M ≤ 2x p99 at 1k", f"{r:.2f}x ({small:.2f} → {big:.2f} ms)",
                         verdict(r <= 2, f"{r:.2f}x")))
    ws_done = {(s, scn, n) for s, scn, n in ws_rows(res)}

    def dpc(server, scn, n):
        return ws_metrics(res, server, scn, n)["dpc"] if (server, scn, n) in ws_done else None
    node = dpc("node-socketio", "sio", 1000)
    sb_ws, lim = dpc("switchboard", "ws", 1000), dpc("limit", "ws", 1000)
    if sb_ws is not None and lim:
        rows.append(("WS fan-out, 1,000 clients: ≥ 70% of limit's deliveries per CPU-s",
                     f"{pct(sb_ws, lim):.1f}%", verdict(pct(sb_ws, lim) >= 70, f"{pct(sb_ws, lim):.1f}%")))
        if node:
            rows.append(("… and ≥ 2.5x node socket.io", f"{sb_ws / node:.2f}x",
                         verdict(sb_ws / node >= 2.5, f"{sb_ws / node:.2f}x")))
    else:
        rows.append(("WS fan-out, 1,000 clients: ≥ 70% of limit, ≥ 2.5x node socket.io", "–", pending("ws", "")))
    sb_sio = dpc("switchboard", "sio", 1000)
    if sb_sio is not None and node:
        rows.append(("Socket.IO fan-out, 1,000 clients: ≥ 2x node socket.io", f"{sb_sio / node:.2f}x",
                     verdict(sb_sio / node >= 2, f"{sb_sio / node:.2f}x")))
    else:
        rows.append(("Socket.IO fan-out, 1,000 clients: ≥ 2x node socket.io", "–", pending("ws", "")))
    for scn, label in (("ws", "WebSocket (joined to a room)"), ("ws-nojoin", "WebSocket (no room)"),
                       ("sio", "Socket.IO over WebSocket (joined)"),
                       ("sse", "SSE (room stream)"), ("sse-stream", "SSE (/stream)")):
        kb = res.get("idle", "switchboard", scn, lambda r: r["result"]["kb_per_conn"])
        if kb is not None:
            rows.append((f"Idle {label} connection ≤ 10 KiB", f"{kb:.1f} KiB", verdict(kb <= 10, f"{kb:.1f} KiB")))
        elif scn in ("ws", "sse"):
            rows.append((f"Idle {label} connection ≤ 10 KiB", "–", pending("idle", "")))
    sse = [k for k in res.by if k[0] == "sse" and k[1] == "switchboard" and k[2].startswith("rooms-")]
    if sse:
        k = sse[0]
        n = res.get(*k, lambda r: r["result"]["n"])
        ok = res.get(*k, lambda r: r["result"]["ok"])
        rows.append((f"{n:,.0f} concurrent SSE clients all served", f"{ok:,.0f} got 200",
                     verdict(ok == n, f"{n - ok:,.0f} not served")))
    else:
        rows.append(("10,000 concurrent SSE clients all served", "–", pending("sse", "")))
    p99 = res.get("longpoll", "switchboard", "wake", lambda r: r["result"]["p99_ms"])
    if p99 is not None:
        rows.append(("Long-poll wake p99 < 5 ms", f"{p99:.1f} ms", verdict(p99 < 5, f"{p99:.1f} ms")))
    else:
        rows.append(("Long-poll wake p99 < 5 ms", "–", pending("longpoll", "")))
    settle = ws_metrics(res, "switchboard", "ws", 1000)["settle"] if ("switchboard", "ws", 1000) in ws_done else None
    peers_settle = ", ".join(f"{p} {ws_metrics(res, p, scn, 1000)['settle']:.1f} s"
                             for p, scn in (("node-socketio", "sio"), ("seed-fastapi", "ws"), ("seed-socketio", "sio"))
                             if (p, scn, 1000) in ws_done)
    rows.append(("1,000 joins settle without O(members) work per join (peers: 10–13 s)",
                 f"{settle:.1f} s connect+settle" if settle is not None else "–",
                 (f"same run: {peers_settle} (connect+settle, 1,000 joining clients)" if peers_settle else "see WS table")
                 if settle is not None else pending("ws", "")))
    return rows


def main():
    if sys.argv[1] == "--splice":
        metas, rows = load(sys.argv[3:])
        print(splice(sys.argv[2], metas, Results(rows)))
        return
    args, keep = sys.argv[1:], None
    if args[:1] == ["--keep"]:
        keep, args = args[1], args[2:]
    kept = kept_sections(keep)   # (a shell's `> OLD.md` would empty it first: write elsewhere)
    metas, rows = load(args)
    meta = metas[0] if metas else {}
    res = Results(rows)
    ran = sorted({s for m in metas for s in m.get("sections", [])}, key=ALL_SECTIONS.index)
    loads = [r["loadavg"] for r in rows if "loadavg" in r]
    busy = [r["machine_busy_pct"] for r in rows if "machine_busy_pct" in r]
    out = ["# Switchboard benchmarks", ""]
    quick = (" with **QUICK=1** (short runs: a smoke test of the harness, not a measurement to quote)"
             if meta.get("quick") else "")
    out.append(f"Written by `bench/run` from the run started {meta.get('started_utc', '?')} at commit "
               f"`{meta.get('commit', '?')}`{quick}, {meta.get('reps', 1)} repetition(s); "
               f"sections: {', '.join(meta.get('sections', []))}. Do not edit by hand: rerun `bench/run`.\n")
    for m in metas[1:]:
        out.append(f"Merged with the run started {m.get('started_utc', '?')} at commit `{m.get('commit', '?')}`"
                   f"{' (QUICK=1)' if m.get('quick') else ''}: sections {', '.join(m.get('sections', []))}, "
                   f"1-min load average {m.get('loadavg_start')} at its start; cells measured in both runs are "
                   "medians over both.\n")
    out.append(f"**Machine**: {meta.get('cpus')} × {meta.get('cpu_model')}, {meta.get('mem_gib')} GiB, "
               f"Linux {meta.get('kernel')}; {meta.get('rustc')}, {meta.get('wrk')}, Python {meta.get('python')}, "
               f"Node {meta.get('node')}. Shared with other jobs (builds, browsers).  ")
    if loads:
        out.append(f"**Machine load**: 1-min load average {meta.get('loadavg_start')} at the start; "
                   f"at the start of each measurement median {statistics.median(loads):.2f} "
                   f"(range {min(loads):.2f}–{max(loads):.2f}); whole-machine busy during the measurements median "
                   f"{statistics.median(busy):.0f}% (range {min(busy):.0f}–{max(busy):.0f}%).\n")
    measured = [s for s in ran if res.has(s)]
    pend = {s: res.skipped(s) for s in ran if res.skipped(s)}
    out.append("**Status of each section in this run**:\n")
    for s in ALL_SECTIONS:
        if s not in ran:
            out.append(f"- {SECTION_TITLES[s]}: not run (run `bench/run {s}`).")
            continue
        parts = []
        if s in measured:
            sb = "switchboard measured" if res.has(s, "switchboard") else "switchboard not measured"
            parts.append(f"measured ({sb}; peers: {', '.join(p for p in res.servers(s) if p != 'switchboard') or 'none'})")
        if s in pend:
            parts.append("**pending** (transport not built yet) — Switchboard answered " + "; ".join(
                f"{why} ({server} {scn})" for server, scn, why in pend[s]) + ", so those scenarios were skipped")
        out.append(f"- {SECTION_TITLES[s]}: " + "; ".join(parts or ["nothing recorded"]) + ".")
    out.append("")
    out.append("## Targets of issue 6\n")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    for t, m, v in targets(res, ran):
        out.append(f"| {t} | {m} | {v} |")
    out.append("")
    out.append("Latency at 64 connections is queueing-bound: the mean is about 64 ÷ req/s (Little's law), so a "
               "p99 under 10 ms needs well over 6,400 req/s from the one server core; the CPU cost per request "
               "(HTTP tables, Profile) decides the latency targets as much as the query plans do. The long-poll "
               "wake is timed from sending the POST, so it includes the POST's own round trip (its own column).\n")
    http_section(res, out)
    http1m_section(res, out)
    pg_section(res, metas, out)
    profile_section(res, out)
    for path in args:
        slow_statements(path, out)
    ws_section(res, out)
    idle_section(res, out)
    sse_section(res, out)
    longpoll_section(res, out)
    out.append(METHOD.strip())
    out += kept
    print("\n".join(out))


if __name__ == "__main__":
    main()
