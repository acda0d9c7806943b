#!/usr/bin/env python3
"""Benchmark driver: athens-proxy next to Athens and nginx, on this machine, in one run.

Called by tests/bench/run, which builds the peers and passes their paths in the environment.
Writes docs/bench/results.md, docs/bench/results.json and docs/bench/chart.png.
Reports; never fails a build because a number is low.
"""

import atexit
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "bench")
OUT = os.path.join(ROOT, "docs", "bench")
CACHE = os.environ["BENCH_CACHE"]
OURS = os.environ["OURS_BIN"]
ATHENS = os.environ["ATHENS_BIN"]
NGINX = os.environ.get("NGINX_BIN", "nginx")
WRK = os.environ.get("WRK_BIN", "wrk")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
COLD_ROUNDS = int(os.environ.get("BENCH_COLD_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
BIG_ZIP = os.environ.get("BENCH_ZIP", "k8s.io/api@v0.31.0")
SKIP_COLD = os.environ.get("BENCH_SKIP_COLD") == "1"


def go_env(name):
    return subprocess.check_output(["go", "env", name], text=True).strip()


UPSTREAM = go_env("GOPROXY")  # the machine's own, read at run time
SUMDB = go_env("GOSUMDB")
WORK = tempfile.mkdtemp(prefix="athens-bench-")
LOG = open(os.path.join(WORK, "bench.log"), "a")


def say(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def load():
    return open("/proc/loadavg").read().split()[:3]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(url, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


# ---------------------------------------------------------------- servers


RUNNING = []  # every server started, stopped at exit whatever happens


class Server:
    def __init__(self, name, argv, env, port, pidfile=None):
        self.name, self.port, self.pidfile = name, port, pidfile
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            argv, env=env, stdout=LOG, stderr=LOG, start_new_session=True
        )
        RUNNING.append(self)
        wait_http(self.url + "/")

    def pids(self):
        """The server's processes (nginx: master and workers)."""
        out = [self.proc.pid]
        try:
            kids = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
            out += [int(k) for k in kids]
        except OSError:
            pass
        return out

    def rss_kib(self):
        """Current RSS summed over the server's processes, KiB."""
        total = 0
        for pid in self.pids():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_ours(storage, mode):
    port = free_port()
    env = dict(os.environ, RUST_LOG="warn")
    argv = [OURS, "--listen", f"127.0.0.1:{port}", "--storage", f"file://{storage}",
            "--upstream", UPSTREAM, "--sumdb", SUMDB, "--network-mode", mode]
    return Server("athens-proxy", argv, env, port)


def start_athens(storage, mode):
    port = free_port()
    env = dict(os.environ)
    env.update({
        "GO_ENV": "production",
        "ATHENS_STORAGE_TYPE": "disk",
        "ATHENS_DISK_STORAGE_ROOT": storage,
        "ATHENS_PORT": f"127.0.0.1:{port}",
        "ATHENS_LOG_LEVEL": "error",
        "ATHENS_NETWORK_MODE": mode,
        # Its `go` subprocess fetches from the same upstream as everyone else.
        "ATHENS_GO_BINARY_ENV_VARS": f"GOPROXY={UPSTREAM}; GOSUMDB={SUMDB}",
        "ATHENS_GOGET_DIR": os.path.join(WORK, "athens-goget"),
    })
    os.makedirs(env["ATHENS_GOGET_DIR"], exist_ok=True)
    return Server("Athens", [ATHENS], env, port)


def start_ceiling(path):
    """The zip rows' "from memory" server (ceiling.py): `path`'s bytes, for any GET."""
    port = free_port()
    return Server("ceiling", [sys.executable, os.path.join(HERE, "ceiling.py"), path, str(port)],
                  dict(os.environ), port)


def start_nginx(storage):
    port = free_port()
    conf = os.path.join(WORK, f"nginx-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes auto;
pid {WORK}/nginx-{port}.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  types {{ application/json info; text/plain mod; application/zip zip; }}
  server {{
    listen 127.0.0.1:{port};
    root {storage};
    location ~ /@v/list$ {{ default_type "text/plain; charset=utf-8"; }}
  }}
}}
""")
    return Server("nginx", [NGINX, "-c", conf, "-e", "stderr"], dict(os.environ), port)


class RssSampler:
    """Samples a server's RSS every 50 ms while active; keeps the peak."""

    def __init__(self, server):
        self.server, self.peak, self._stop = server, 0, threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self.t.join()
        return self.peak


# ---------------------------------------------------------------- wrk


def wrk(url, paths, conns, seconds=DURATION):
    pf = os.path.join(WORK, "paths.txt")
    with open(pf, "w") as f:
        f.write("\n".join(paths) + "\n")
    threads = min(2, conns)
    out = subprocess.run(
        [WRK, "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
         "-s", os.path.join(HERE, "paths.lua"), url],
        env=dict(os.environ, WRK_PATHS=pf), capture_output=True, text=True, check=True,
    ).stdout
    LOG.write(out)

    def unit(v, u):
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]

    def size(v, u):
        return float(v) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[u]

    r = {}
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    r["bps"] = size(m.group(1), m.group(2))
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        r[f"p{p}"] = unit(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", out)
    r["socket_errors"] = m.group(0) if m else ""
    return r


# ---------------------------------------------------------------- cold fill


def coldfill_copy():
    """A copy of the coldfill graph in WORK: `go mod download` adds go.sum lines, and the
    tracked files stay as they are."""
    graph = tempfile.mkdtemp(prefix="coldfill-", dir=WORK)
    for f in ("go.mod", "go.sum", "main.go"):
        shutil.copy(os.path.join(HERE, "coldfill", f), graph)
    return graph


def go_download(goproxy):
    """Wall time of `go mod download` of the coldfill graph with a fresh module cache."""
    cache = tempfile.mkdtemp(prefix="modcache-", dir=WORK)
    env = dict(os.environ, GOPROXY=goproxy, GOMODCACHE=cache, GOFLAGS="-modcacherw",
               GONOSUMDB="", GONOSUMCHECK="", GOPRIVATE="", GONOPROXY="")
    graph = coldfill_copy()
    t = time.monotonic()
    p = subprocess.run(["go", "mod", "download"], cwd=graph, env=env,
                       capture_output=True, text=True)
    wall = time.monotonic() - t
    shutil.rmtree(graph, ignore_errors=True)
    mods = sum(len([f for f in fs if f.endswith(".zip")]) for _, _, fs in
               os.walk(os.path.join(cache, "cache", "download")))
    shutil.rmtree(cache, ignore_errors=True)
    if p.returncode != 0:
        say(f"go mod download via {goproxy} failed: {p.stderr[-500:]}")
        return None, mods
    return wall, mods


def cold_fill(results):
    times = {"direct": [], "athens-proxy": [], "Athens": []}
    nzip = 0
    keep = {}
    for rnd in range(COLD_ROUNDS):
        for who in ("direct", "athens-proxy", "Athens"):
            if who == "direct":
                wall, nzip = go_download(UPSTREAM)
            else:
                st = tempfile.mkdtemp(prefix=f"cold-{who}-", dir=WORK)
                srv = start_ours(st, "strict") if who == "athens-proxy" else start_athens(st, "strict")
                wall, _ = go_download(srv.url)
                srv.stop()
                if rnd == COLD_ROUNDS - 1:
                    keep[who] = st
                else:
                    shutil.rmtree(st, ignore_errors=True)
            say(f"cold round {rnd} {who}: {wall}s load {load()}")
            if wall is not None:
                times[who].append(wall)
    results["cold"] = {k: {"runs": v, "median": statistics.median(v) if v else None}
                       for k, v in times.items()}
    results["cold_zips"] = nzip
    results["cold_load"] = load()
    return keep


# ---------------------------------------------------------------- main


def stored_paths(storage):
    """Request paths for everything in our storage: .info, .mod and list per module."""
    info, mod, lst = [], [], []
    for dirpath, _, files in os.walk(storage):
        if not dirpath.endswith("/@v"):
            continue
        rel = "/" + os.path.relpath(dirpath, storage)
        for f in sorted(files):
            if f.endswith(".info"):
                info.append(f"{rel}/{f}")
                mod.append(f"{rel}/{f[:-5]}.mod")
        if "list" in files:
            lst.append(f"{rel}/list")
    return sorted(info), sorted(mod), sorted(lst)


def fetch(url):
    with urllib.request.urlopen(url, timeout=600) as r:
        return r.read()


def main():
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "load_start": load()}
    say("work dir", WORK)

    # Cold fill through empty proxies, versus direct; the last round's storage stays for the rest.
    if SKIP_COLD:
        keep = {}
        for who in ("athens-proxy", "Athens"):
            st = tempfile.mkdtemp(prefix=f"fill-{who}-", dir=WORK)
            srv = start_ours(st, "strict") if who == "athens-proxy" else start_athens(st, "strict")
            go_download(srv.url)
            srv.stop()
            keep[who] = st
    else:
        keep = cold_fill(results)

    mod, ver = BIG_ZIP.split("@")
    zip_path = f"/{mod}/@v/{ver}.zip"
    probes = ["github.com/spf13", "golang.org/x", "google.golang.org", "go.uber.org",
              "github.com/prometheus"]
    strict = {"athens-proxy": start_ours(keep["athens-proxy"], "strict"),
              "Athens": start_athens(keep["Athens"], "strict")}
    try:
        for s in strict.values():
            fetch(s.url + zip_path)  # the large zip, stored once in each
        # Not-found probes: list of path prefixes that are not modules.
        nf = {}
        for name, s in strict.items():
            first, again, codes = [], [], set()
            for p in probes:
                for i in range(11):
                    t = time.monotonic()
                    try:
                        fetch(f"{s.url}/{p}/@v/list")
                        codes.add(200)
                    except urllib.error.HTTPError as e:
                        codes.add(e.code)
                    ms = (time.monotonic() - t) * 1e3
                    (first if i == 0 else again).append(ms)
            nf[name] = {"first_ms": statistics.median(first),
                        "repeat_ms": statistics.median(again), "codes": sorted(codes)}
            say(f"not-found {name}: {nf[name]}")
        results["notfound"] = nf
    finally:
        for s in strict.values():
            s.stop()

    info, mods, lists = stored_paths(keep["athens-proxy"])
    results["paths"] = {"info": len(info), "mod": len(mods), "list": len(lists)}
    say(f"warm set: {len(info)} versions, {len(lists)} lists")

    # Warm servers: offline so that no benchmark request ever leaves the machine.
    servers = {}
    servers["nginx"] = start_nginx(keep["athens-proxy"])
    servers["athens-proxy"] = start_ours(keep["athens-proxy"], "offline")
    servers["Athens"] = start_athens(keep["Athens"], "offline")
    order = ["nginx", "athens-proxy", "Athens"]
    try:
        time.sleep(1)
        results["rss_idle_kib"] = {n: s.rss_kib() for n, s in servers.items()}
        # Warm-up, and a check that every server answers every path.
        for n, s in servers.items():
            for p in (info[:3] + mods[:3] + lists[:3] + [zip_path]):
                fetch(s.url + p)
        # Started after the warm-up: it answers every path with the zip.
        servers["ceiling"] = start_ceiling(os.path.join(keep["athens-proxy"], zip_path.lstrip("/")))
        cases = [(ep, c) for ep in ("info", "mod", "list") for c in (32, 128)]
        paths = {"info": info, "mod": mods, "list": lists}
        warm, peaks = {}, {}

        def measure(key, ps, conns, who):
            """Alternating rounds over the servers in `who`; median per server, peak RSS."""
            runs = {n: [] for n in who}
            smp = {n: RssSampler(servers[n]) for n in who}
            for rnd in range(ROUNDS):
                for n in who:
                    runs[n].append(wrk(servers[n].url, ps, conns))
            peaks[key] = {n: s.stop() for n, s in smp.items()}
            warm[key] = {n: summarize(rs) for n, rs in runs.items()}
            say(f"warm {key}: " + ", ".join(
                f"{n} {warm[key][n]['rps']:.0f}/s {warm[key][n]['bps'] / 2**20:.0f} MiB/s"
                for n in who) + f" load {load()}")

        for ep, c in cases:
            measure(f"{ep}@{c}", paths[ep], c, order)
        # Large zip: bytes/s with few and with many connections, and from memory beside them.
        for c in (4, 32):
            measure(f"zip@{c}", [zip_path], c, order + ["ceiling"])
        # `list` in strict mode: ours asks upstream (the machine's GOPROXY) and keeps the answer
        # briefly. Athens is left out here: every one of its strict `list` requests goes to the
        # real upstream, which a load test must not do.
        servers["athens-proxy strict"] = start_ours(keep["athens-proxy"], "strict")
        for p in lists:
            fetch(servers["athens-proxy strict"].url + p)
        measure("list-strict@32", lists, 32, ["nginx", "athens-proxy strict"])
        warm["list-strict@32"]["athens-proxy"] = warm["list-strict@32"].pop("athens-proxy strict")
        peaks["list-strict@32"]["athens-proxy"] = peaks["list-strict@32"].pop("athens-proxy strict")
        results["list_staleness"] = list_staleness(servers["athens-proxy"], keep["athens-proxy"],
                                                   lists)
        say(f"list staleness: {results['list_staleness']}")
        results["rss_peak_kib"] = peaks
        results["rss_warm_kib"] = {n: max(peaks[k].get(n, 0) for k in peaks) for n in order}
        results["rss_stream_kib"] = dict(peaks["zip@32"])
        results["zip_size"] = len(fetch(servers["nginx"].url + zip_path))
        results["warm"] = warm
        results["warm_load"] = load()
    finally:
        for s in servers.values():
            s.stop()

    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["load_end"] = load()
    results["machine"] = machine()
    os.makedirs(OUT, exist_ok=True)
    prev = os.path.join(OUT, "results.json")
    if os.path.exists(prev):  # keep the operator section from an earlier run
        old = json.load(open(prev))
        carry = ["operator"]
        if SKIP_COLD:  # keep the cold-fill and not-found sections of the run that measured them
            carry += ["cold", "cold_zips", "cold_load", "cold_note"]
            results["cold_note"] = old.get("cold_note") or f"cold fill from the run of {old.get('started')}"
        for k in carry:
            if k in old and k not in results:
                results[k] = old[k]
    json.dump(results, open(prev, "w"), indent=1)
    subprocess.run([sys.executable, os.path.join(HERE, "report.py")], check=True)
    shutil.rmtree(WORK, ignore_errors=True)


def list_staleness(server, storage, lists, samples=5):
    """How long after another replica commits a version the `list` of a running server shows
    it: a new version's `.info` marker is written into the storage folder behind the server's
    back (as a second replica sharing the bucket would), then `list` is polled every 10 ms."""
    out = []
    for p in lists[:samples]:
        vdir = os.path.join(storage, p.strip("/")[: -len("/list")])
        tagged = [f[:-5] for f in os.listdir(vdir)
                  if f.endswith(".info") and "-" not in f and "+" not in f]
        if not tagged:
            continue
        major, minor, _ = tagged[0][1:].split(".")
        new = f"v{major}.{minor}.9999"
        tmp = os.path.join(vdir, f".{new}.info.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"Version": new, "Time": "2024-01-01T00:00:00Z"}))
        t = time.monotonic()
        os.rename(tmp, os.path.join(vdir, f"{new}.info"))
        while new not in fetch(server.url + p).decode().split():
            if time.monotonic() - t > 30:
                break
            time.sleep(0.01)
        out.append(round((time.monotonic() - t) * 1e3))
        os.remove(os.path.join(vdir, f"{new}.info"))
    return {"ms": out, "max_ms": max(out) if out else None}


def summarize(runs):
    keys = ("rps", "bps", "p50", "p99")
    s = {k: statistics.median(r[k] for r in runs) for k in keys}
    s["errors"] = sum(r["errors"] for r in runs)
    s["runs"] = [round(r["rps"], 1) for r in runs]
    return s


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    mem = int(open("/proc/meminfo").readline().split()[1]) // 1024
    ver = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip() + \
        subprocess.run(argv, capture_output=True, text=True).stderr.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
        "os": next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release")
                    if l.startswith("PRETTY_NAME")), ""),
        "go": ver(["go", "version"]),
        "nginx": ver([NGINX, "-v"]),
        "wrk": ver([WRK, "--version"]).splitlines()[0] if ver([WRK, "--version"]) else "",
        "athens": "v0.18.0",
        "athens_proxy": ver([OURS, "--version"]),
    }


if __name__ == "__main__":
    # SIGTERM (timeout, Ctrl-C from a wrapper) unwinds through the finally blocks that stop servers.
    atexit.register(lambda: [s.stop() for s in RUNNING])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
