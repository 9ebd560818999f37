#!/usr/bin/env python3
"""bench/perf_summary.py: condenses one `perf record -g` of the server into the RESULT
line bench/run records (share of samples per thread, per binary, and the user-space
frames with the most inclusive time), for REPORT.md's profile table. Stdlib only.

usage: perf_summary.py PERF_DATA TEST
"""
import json
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d.]+)%\s+(?:([\d.]+)%\s+)?(.*?)(?:\s+-\s+-)?\s*$")


def report(data, *args):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *args],
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            rows.append((float(m.group(1)), float(m.group(2) or 0), m.group(3)))
    return rows


def main():
    data, test = sys.argv[1], sys.argv[2]
    threads = {name: pct for pct, _, name in report(data, "--no-children", "--sort", "comm")}
    dsos = {name: pct for pct, _, name in report(data, "--no-children", "--sort", "dso")}
    top, kernel = [], {}
    for children, self_pct, sym in report(data, "--children", "--sort", "symbol", "--percent-limit", "2"):
        if sym.startswith("[k]"):       # two kernel frames tell thread hand-offs from I/O
            name = sym[3:].strip()
            if name in ("__x64_sys_futex", "schedule"):
                kernel[name] = children
            continue
        name = sym[3:].strip()
        if re.fullmatch(r"(0x)?[0-9a-f]+", name) or name in ("syscall", "__GI___writev", "__libc_start_call_main"):
            continue
        top.append([name[:110], children, self_pct])
        if len(top) == 10:
            break
    print("RESULT " + json.dumps({"mode": "profile", "test": test, "samples_by_thread": threads,
                                  "samples_by_binary": dsos, "kernel_frames": kernel,
                                  "top_user_frames": top}))


if __name__ == "__main__":
    main()
