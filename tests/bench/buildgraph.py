#!/usr/bin/env python3
"""Cold build graph: `go list -deps ./...` of a large real project through an empty proxy.

Called by `tests/bench/run graph`. The project's source is itself fetched as a module zip
through the machine's GOPROXY (BENCH_GRAPH_PROJECT, default github.com/prometheus/prometheus
@v0.54.1: a go.sum of ~1000 go.mod lines). Each round, in rotated order (each runs first equally
often), with a fresh module cache each time: straight from the upstream (the machine's GOPROXY), athens-proxy with an empty
bucket, optionally an earlier athens-proxy build (OURS_BEFORE_BIN: before/after a change), and
Athens v0.18.0 with empty storage. Reports medians and ratios to docs/bench/store-and-graph.md
(the graph section; tests/bench/minio.py writes the storage section). A report; never a gate.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (servers, the machine's upstream, helpers)

PROJECT = os.environ.get("BENCH_GRAPH_PROJECT", "github.com/prometheus/prometheus@v0.54.1")
ROUNDS = int(os.environ.get("BENCH_GRAPH_ROUNDS", "3"))
# Idle seconds before every run. The upstream answers a run that follows another burst of
# fetches far slower than one after a quiet spell (25-30 s against 14-17 s), so without an
# equal pause the order decided the ratios more than the proxies did. 60 s was not enough for
# the proxy's run, which also asks upstream for every version's .info and the checksum
# database's lookups and tiles (2026-12-07: ours 21-25 s after 60 s pauses, 15-16 s after 180 s;
# direct 14.5-16.5 s and 12.5-17 s).
PAUSE = float(os.environ.get("BENCH_GRAPH_PAUSE", "180"))
BUILD = os.environ.get("BENCH_GRAPH_BUILD") == "1"  # also `go build ./...` (slow on 2 cores)
BEFORE = os.environ.get("OURS_BEFORE_BIN", "")
OUT_JSON = os.path.join(b.OUT, "graph.json")


def project_source():
    """The project's module zip, fetched through the machine's GOPROXY, unpacked writable."""
    cache = os.path.join(b.CACHE, "graph-src")
    env = dict(os.environ, GOMODCACHE=cache, GOFLAGS="-modcacherw")
    out = subprocess.check_output(["go", "mod", "download", "-json", PROJECT], env=env, text=True)
    src = json.loads(out)["Dir"]
    dst = os.path.join(b.WORK, "project")
    shutil.copytree(src, dst)
    return dst


def go_graph(project, goproxy, build):
    """Wall seconds of `go list -deps ./...` (then `go build ./...` when asked), fresh cache."""
    cache = tempfile.mkdtemp(prefix="modcache-", dir=b.WORK)
    env = dict(os.environ, GOPROXY=goproxy, GOMODCACHE=cache, GOFLAGS="-modcacherw",
               GONOSUMDB="", GONOSUMCHECK="", GOPRIVATE="", GONOPROXY="",
               GOCACHE=os.path.join(b.WORK, "gocache"))
    t = time.monotonic()
    p = subprocess.run(["go", "list", "-deps", "./..."], cwd=project, env=env,
                       capture_output=True, text=True)
    took = {"list": time.monotonic() - t}
    if p.returncode == 0 and build:
        t = time.monotonic()
        q = subprocess.run(["go", "build", "./..."], cwd=project, env=env,
                           capture_output=True, text=True)
        took["build"] = time.monotonic() - t if q.returncode == 0 else None
    dl = os.path.join(cache, "cache", "download")
    counts = {"zips": 0, "mods": 0}
    for _, _, fs in os.walk(dl):
        counts["zips"] += sum(f.endswith(".zip") for f in fs)
        counts["mods"] += sum(f.endswith(".mod") for f in fs)
    shutil.rmtree(cache, ignore_errors=True)
    if p.returncode != 0:
        b.say(f"go list via {goproxy} failed: {p.stderr[-800:]}")
        took["list"] = None
    return took, counts


def fill_stages(srv):
    """Seconds the proxy's successful fills spent per stage, summed (its own metrics; None
    for a build without them)."""
    try:
        text = b.fetch(srv.url + "/metrics").decode()
    except OSError:
        return None
    got = {}
    for line in text.splitlines():
        for stage in ("fetch", "check", "commit"):
            if line.startswith(f'athens_fill_stage_duration_seconds_sum{{stage="{stage}"}}'):
                got[stage] = round(float(line.split()[-1]), 2)
        if line.startswith("athens_fill_sumdb_wait_seconds_sum "):
            got["sumdb_wait"] = round(float(line.split()[-1]), 2)
    return got or None


def start(who, storage):
    if who == "Athens":
        return b.start_athens(storage, "strict")
    saved = b.OURS
    if who == "athens-proxy (before)":
        b.OURS = BEFORE
    try:
        return b.start_ours(storage, "strict")
    finally:
        b.OURS = saved


def main():
    project = project_source()
    who_all = ["direct", "athens-proxy"] + (["athens-proxy (before)"] if BEFORE else []) + ["Athens"]
    times = {w: [] for w in who_all}
    builds = {w: [] for w in who_all}
    peaks = {w: 0 for w in who_all}
    stages = {w: [] for w in who_all}
    counts = {}
    loads = []
    for rnd in range(ROUNDS):
        # Rotated, so each server takes each place equally often: the upstream's speed drifts
        # within a round (the first run after an idle spell took 14-17 s, runs right after
        # another 25-30 s), and plain alternation never put the middle place, ours, first.
        k = rnd % len(who_all)
        order = who_all[k:] + who_all[:k]
        for who in order:
            time.sleep(PAUSE)
            loads.append(b.load())
            if who == "direct":
                took, counts = go_graph(project, b.UPSTREAM, BUILD)
            else:
                st = tempfile.mkdtemp(prefix="graph-", dir=b.WORK)
                srv = start(who, st)
                rss = b.RssSampler(srv)
                took, _ = go_graph(project, srv.url, BUILD)
                peaks[who] = max(peaks[who], rss.stop())
                st_sums = fill_stages(srv) if who != "Athens" else None
                if st_sums:
                    stages[who].append(st_sums)
                srv.stop()
                shutil.rmtree(st, ignore_errors=True)
            b.say(f"graph round {rnd} {who}: {took} load {b.load()}")
            if took.get("list") is not None:
                times[who].append(took["list"])
            if took.get("build") is not None:
                builds[who].append(took["build"])
    med = lambda v: statistics.median(v) if v else None
    res = {
        "project": PROJECT, "rounds": ROUNDS, "pause": PAUSE, "fetched": counts, "loads": loads,
        "list": {w: {"runs": [round(x, 1) for x in v], "median": med(v)} for w, v in times.items()},
        "build": {w: {"runs": [round(x, 1) for x in v], "median": med(v)} for w, v in builds.items()},
        "peak_rss_mib": {w: round(v / 1024, 1) for w, v in peaks.items() if v},
        "fill_stages": {w: v for w, v in stages.items() if v},
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    os.makedirs(b.OUT, exist_ok=True)
    with open(OUT_JSON, "w") as f:
        json.dump(res, f, indent=1)
    subprocess.run([sys.executable, os.path.join(b.HERE, "store_report.py")], check=True)


if __name__ == "__main__":
    import atexit
    import signal
    atexit.register(lambda: [s.stop() for s in b.RUNNING])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        shutil.rmtree(b.WORK, ignore_errors=True)
