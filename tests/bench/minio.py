#!/usr/bin/env python3
"""Warm hits on object storage: athens-proxy and Athens v0.18.0 on the same MinIO (S3 API).

Called by `tests/bench/run store` (MinIO from tests/peers/minio-install). Both proxies fill
their own prefix/bucket of one MinIO from the machine's GOPROXY with the coldfill graph
(tests/bench/coldfill) plus one large zip (BENCH_ZIP), then serve it offline while wrk asks
for `.info`, `.mod` and the zip, in alternating rounds (zips both from athens-proxy's local
copies, `storage.zip_cache_dir` as the operator renders it by default, and streamed from the
bucket without copies). Then the large zip once more: from the local copy, streamed by
athens-proxy, and redirected to a pre-signed MinIO URL (`storage.zip_redirect_seconds`,
issue 14), fetched by curl following redirects as the go command does (wrk cannot follow a
redirect to another host). Writes docs/bench/store.json and the storage section of
docs/bench/store-and-graph.md. A report; never a gate.
"""

import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

MINIO = os.environ["ATHENS_MINIO_BIN"]
KEY, SECRET, REGION = "athens-bench", "athens-bench-secret", "us-east-1"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def sign_put_bucket(endpoint, bucket):
    """Creates a bucket: one SigV4-signed PUT (no S3 client needed)."""
    host = endpoint.split("://", 1)[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    canonical = f"PUT\n/{bucket}\n\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{amz}\n\n" \
                f"host;x-amz-content-sha256;x-amz-date\n{empty}"
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    k = ("AWS4" + SECRET).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", headers={
        "x-amz-date": amz, "x-amz-content-sha256": empty,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, "
                         f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
    urllib.request.urlopen(req, timeout=30).read()


def start_minio():
    port, console = b.free_port(), b.free_port()
    data = tempfile.mkdtemp(prefix="minio-", dir=b.WORK)
    env = dict(os.environ, MINIO_ROOT_USER=KEY, MINIO_ROOT_PASSWORD=SECRET,
               MINIO_BROWSER="off", MINIO_UPDATE="off")
    srv = b.Server("MinIO", [MINIO, "server", os.path.join(data, "d"), "--address",
                             f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{console}",
                             "--certs-dir", os.path.join(data, "certs"), "--quiet"], env, port)
    for bucket in ("ours", "athens"):
        for _ in range(100):
            try:
                sign_put_bucket(srv.url, bucket)
                break
            except Exception:
                time.sleep(0.2)
    return srv


# What the operator renders for an S3 bucket by default: a 1Gi emptyDir, 80% of it for copies.
ZIP_CACHE_BYTES = (1 << 30) // 5 * 4


def start_ours(minio_url, mode, redirect_seconds=0, zip_cache=True):
    """athens-proxy on the `ours` bucket; with `zip_cache`, local copies of zips in a folder of
    its own (`storage.zip_cache_dir`), as the operator renders it."""
    port = b.free_port()
    cfg = os.path.join(b.WORK, f"ours-{port}.toml")
    cache = ""
    if zip_cache:
        cache = (f'zip_cache_dir = "{os.path.join(b.WORK, f"zips-{port}")}"\n'
                 f'zip_cache_max_bytes = {ZIP_CACHE_BYTES}\n')
    with open(cfg, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\n[upstream]\ngoproxy = "{b.UPSTREAM}"\n'
                f'sumdb = "{b.SUMDB}"\nnetwork_mode = "{mode}"\n[storage]\nurl = "s3://ours"\n'
                f'zip_redirect_seconds = {redirect_seconds}\n{cache}'
                f'[storage.options]\nendpoint = "{minio_url}"\nregion = "{REGION}"\n'
                f'allow_http = "true"\nvirtual_hosted_style_request = "false"\n')
    env = dict(os.environ, RUST_LOG="warn", AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    return b.Server("athens-proxy", [b.OURS, "--config", cfg], env, port)


def start_athens(minio_url, mode):
    port = b.free_port()
    env = dict(os.environ)
    env.update({
        "GO_ENV": "production", "ATHENS_STORAGE_TYPE": "s3", "ATHENS_S3_BUCKET_NAME": "athens",
        "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT": minio_url, "AWS_FORCE_PATH_STYLE": "true",
        "ATHENS_PORT": f"127.0.0.1:{port}", "ATHENS_LOG_LEVEL": "error",
        "ATHENS_NETWORK_MODE": mode,
        "ATHENS_GO_BINARY_ENV_VARS": f"GOPROXY={b.UPSTREAM}; GOSUMDB={b.SUMDB}",
        "ATHENS_GOGET_DIR": os.path.join(b.WORK, "athens-goget"),
    })
    os.makedirs(env["ATHENS_GOGET_DIR"], exist_ok=True)
    return b.Server("Athens", [b.ATHENS], env, port)


def cpu_seconds(server):
    """User plus system CPU time the server's process has used so far, in seconds."""
    with open(f"/proc/{server.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_zips(url, conns, n):
    """`n` GETs of `url`, `conns` at a time, by curl following redirects (as the go command
    does). Returns bytes/s, bytes, how many were not 200, and how many were redirected."""
    cfg = os.path.join(b.WORK, "curl.cfg")
    with open(cfg, "w") as f:
        f.write(f'url = "{url}"\noutput = "/dev/null"\n' * n)
    t = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "-L", "-Z", "--parallel-max", str(conns), "-K", cfg,
         "-w", "%{http_code} %{size_download} %{num_redirects}\n"],
        capture_output=True, text=True, check=True).stdout
    dt = time.monotonic() - t
    rows = [line.split() for line in out.splitlines() if line.strip()]
    got = sum(int(size) for code, size, _ in rows if code == "200")
    bad = sum(1 for code, _, _ in rows if code != "200")
    redirected = sum(1 for _, _, r in rows if int(r) > 0)
    return got / dt, got, bad, redirected


def zip_redirects(minio_url, zip_path, conns=(4, 32)):
    """Warm zip MiB/s to a client that follows redirects: streamed by athens-proxy versus a
    `307` to a pre-signed URL of the same MinIO, in alternating rounds, and the proxy's CPU
    seconds per GiB delivered (what redirects take off its pods)."""
    servers = {"copied": start_ours(minio_url, "offline"),
               "streamed": start_ours(minio_url, "offline", zip_cache=False),
               "redirected": start_ours(minio_url, "offline", 300, zip_cache=False)}
    rows = []
    try:
        warm_copy(servers["copied"], zip_path)
        for c in conns:
            mibps = {n: [] for n in servers}
            cpu = {n: [] for n in servers}
            checks = {n: [0, 0] for n in servers}  # not-200, redirected
            for rnd in range(ROUNDS):
                order = list(servers) if rnd % 2 == 0 else list(reversed(list(servers)))
                for n in order:
                    before = cpu_seconds(servers[n])
                    bps, got, bad, redirected = curl_zips(servers[n].url + zip_path, c, 4 * c)
                    mibps[n].append(bps / 2**20)
                    cpu[n].append((cpu_seconds(servers[n]) - before) / max(got / 2**30, 1e-9))
                    checks[n][0] += bad
                    checks[n][1] += redirected
            rows.append({"conns": c, **{f"{n}_mibps": statistics.median(v)
                                        for n, v in mibps.items()},
                         **{f"{n}_cpu_s_per_gib": statistics.median(v) for n, v in cpu.items()},
                         "errors": {n: v[0] for n, v in checks.items()},
                         "redirected": {n: v[1] for n, v in checks.items()}})
            b.say(f"zip redirect @{c}: local copy {rows[-1]['copied_mibps']:.0f} MiB/s, "
                  f"streamed {rows[-1]['streamed_mibps']:.0f} MiB/s, redirected {rows[-1]['redirected_mibps']:.0f} MiB/s, load {b.load()}")
    finally:
        for s in servers.values():
            s.stop()
    return rows


def redirect_text(rows):
    """The report's paragraph on zip redirects."""
    if not rows:
        return "Pre-signed zip redirects (issue 14): not measured in this run."
    parts = [f"{r['conns']} at a time: "
             + (f"from the local copy {r['copied_mibps']:.0f} MiB/s "
                f"({r['copied_cpu_s_per_gib']:.2f} proxy CPU s/GiB), " if "copied_mibps" in r else "")
             + f"streamed {r['streamed_mibps']:.0f} MiB/s "
             f"({r['streamed_cpu_s_per_gib']:.2f} proxy CPU s/GiB), redirected "
             f"{r['redirected_mibps']:.0f} MiB/s ({r['redirected_cpu_s_per_gib']:.2f} proxy CPU "
             f"s/GiB; errors {r['errors']})" for r in rows]
    return ("Pre-signed zip redirects (issue 14, `storage.zip_redirect_seconds`): the large zip "
            "fetched by curl following redirects, as the go command does: sent by athens-proxy "
            "from its local copy (`storage.zip_cache_dir`, the operator's default), streamed "
            "through it from the bucket (no copies), and redirected to a pre-signed URL of the "
            "same MinIO; medians of "
            f"{ROUNDS} alternating rounds of 4 x conns requests: " + "; ".join(parts) + ".")


def warm_copy(server, zip_path):
    """Fetches the zip until `server` serves it from its local copy (the copy is written beside
    the first response, so it may lag it a moment)."""
    for _ in range(50):
        b.fetch(server.url + zip_path)
        text = b.fetch(server.url + "/metrics").decode()
        if any(l.startswith('athens_zip_cache_total{outcome="hit"}') and not l.endswith(" 0")
               for l in text.splitlines()):
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.url}: the zip was never served from its local copy")


def escape(p):
    return "".join("!" + c.lower() if c.isupper() else c for c in p)


def fill(url):
    """Downloads the coldfill graph and the large zip through a proxy; returns module@versions."""
    cache = tempfile.mkdtemp(prefix="modcache-", dir=b.WORK)
    env = dict(os.environ, GOPROXY=url, GOMODCACHE=cache, GOFLAGS="-modcacherw",
               GONOSUMDB="", GOPRIVATE="", GONOPROXY="")
    graph = b.coldfill_copy()
    out = subprocess.run(["go", "mod", "download", "-json", "all"], cwd=graph, env=env,
                         capture_output=True, text=True).stdout
    subprocess.run(["go", "mod", "download", b.BIG_ZIP], env=env, capture_output=True,
                   cwd=b.WORK)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(graph, ignore_errors=True)
    dec = json.JSONDecoder()
    mods, i = [], 0
    while i < len(out):
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out):
            break
        obj, i = dec.raw_decode(out, i)
        if obj.get("Zip") and not obj.get("Error"):
            mods.append((obj["Path"], obj["Version"]))
    return mods


def main():
    minio = start_minio()
    ours = start_ours(minio.url, "strict")
    athens = start_athens(minio.url, "strict")
    mods = fill(ours.url)
    fill(athens.url)
    ours.stop()
    athens.stop()
    b.say(f"filled {len(mods)} versions into both")
    base = lambda m, v: f"/{escape(m)}/@v/{escape(v)}"
    paths = {"info": [base(m, v) + ".info" for m, v in mods],
             "mod": [base(m, v) + ".mod" for m, v in mods]}
    zm, zv = b.BIG_ZIP.split("@")
    paths["zip"] = [base(zm, zv) + ".zip"]
    nocopy = "athens-proxy, no zip cache"
    servers = {"athens-proxy": start_ours(minio.url, "offline"),
               nocopy: start_ours(minio.url, "offline", zip_cache=False),
               "Athens": start_athens(minio.url, "offline")}
    for s in servers.values():  # warm-up, and a check that all is there
        for p in paths["info"][:3] + paths["mod"][:3] + paths["zip"]:
            b.fetch(s.url + p)
    warm_copy(servers["athens-proxy"], paths["zip"][0])
    samplers = {n: b.RssSampler(s) for n, s in servers.items()}
    # (path kind, connections, target, which athens-proxy): the operator's default (zip
    # copies on local disk), and zips streamed from the bucket as before copies existed.
    cases = [("info", 32, ">= 3x", "athens-proxy"), ("info", 128, ">= 3x", "athens-proxy"),
             ("mod", 32, ">= 3x", "athens-proxy"), ("mod", 128, ">= 3x", "athens-proxy"),
             ("zip", 4, ">= 1.5x", "athens-proxy"), ("zip", 32, ">= 1.5x", "athens-proxy"),
             ("zip", 4, "", nocopy), ("zip", 32, "", nocopy)]
    rows, loads, redirect_rows = [], [], []
    try:
        for ep, c, target, ours in cases:
            pair = [ours, "Athens"]
            runs = {n: [] for n in pair}
            for rnd in range(ROUNDS):
                order = pair if rnd % 2 == 0 else list(reversed(pair))
                loads.append(b.load())
                for n in order:
                    runs[n].append(b.wrk(servers[n].url, paths[ep], c))
            s = {n: b.summarize(r) for n, r in runs.items()}
            key = "bps" if ep == "zip" else "rps"
            scale = 1 / 2**20 if ep == "zip" else 1
            label = ep
            if ep == "zip":
                label = ("zip, streamed from the bucket (MiB/s)" if ours == nocopy
                         else "zip, local copy (MiB/s)")
            rows.append({"scenario": label, "conns": c,
                         "ours": s[ours][key] * scale, "athens": s["Athens"][key] * scale,
                         "errors": {n: v["errors"] for n, v in s.items()}, "target": target})
            b.say(f"store {ep}@{c}: ours {rows[-1]['ours']:.0f} Athens {rows[-1]['athens']:.0f} "
                  f"load {b.load()}")
        redirect_rows = zip_redirects(minio.url, paths["zip"][0])
    finally:
        peaks = {n: round(smp.stop() / 1024, 1) for n, smp in samplers.items()}
        for s in servers.values():
            s.stop()
        minio.stop()
    res = {"rows": rows, "rounds": ROUNDS, "seconds": b.DURATION, "loads": loads,
           "versions": len(mods), "peak_rss_mib": peaks,
           "redirect": redirect_text(redirect_rows), "redirect_rows": redirect_rows,
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    os.makedirs(b.OUT, exist_ok=True)
    json.dump(res, open(os.path.join(b.OUT, "store.json"), "w"), indent=1)
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
