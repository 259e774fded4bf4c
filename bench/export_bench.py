#!/usr/bin/env python3
"""Export benchmark (BENCHMARKS.md, "Exports"): not part of `cargo test`.

Seeds one tenant (`runledger seed`, default 100,000 runs x 20 steps), starts `runledger serve`
on it, requests a BUNDLE of every run through GraphQL and waits for the build, downloads it over
loopback, and verifies it offline with `runledger verify-bundle`. Prints one JSON line per
backend: build records/s, the server's peak resident memory (VmHWM, /proc) after the build and
after the download, download MB/s, verify-bundle records/s.

    python3 bench/export_bench.py --bin target/release/runledger \
        [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--runs 100000 --steps 20]

The PostgreSQL run creates (and leaves) a database named runledger_export_bench_<pid>.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def graphql(base, key, query):
    req = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def measure(bin_, url, runs, steps, work):
    common = ["--database-url", url]
    key_file = os.path.join(work, "signing.key")
    export_dir = os.path.join(work, "exports")
    t = time.monotonic()
    tenant = run([bin_, "seed", *common, "--tenants", "1", "--runs", str(runs),
                  "--steps-per-run", str(steps), "--telemetry-percent", "0", "--seed", "1",
                  "--signing-key-file", key_file, "--export-dir", export_dir]).split()[0]
    seeded_s = time.monotonic() - t
    key = run([bin_, "keys", "create", *common, "--tenant", tenant, "--role", "auditor"]).strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [bin_, "serve", *common, "--listen", f"127.0.0.1:{port}", "--signing-key-file", key_file,
         "--export-dir", export_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/readyz").read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        idle_rss = peak_rss_mb(server.pid)
        t = time.monotonic()
        exp = graphql(base, key, "mutation { requestExport(scope: {runs: {}}) { exportId } }")
        export_id = exp["requestExport"]["exportId"]
        while True:
            nodes = graphql(base, key, "{ audit { exports(first: 100) { nodes { exportId status "
                            "checksum build { recordsWritten sizeBytes failureReason } } } } }")
            e = next(n for n in nodes["audit"]["exports"]["nodes"] if n["exportId"] == export_id)
            if e["status"] != "PENDING":
                break
            time.sleep(0.5)
        build_s = time.monotonic() - t
        if e["status"] != "COMPLETED":
            raise RuntimeError(f"export {export_id}: {e}")
        records = e["build"]["recordsWritten"]
        build_rss = peak_rss_mb(server.pid)
        bundle = os.path.join(work, "bundle.jsonl")
        req = urllib.request.Request(f"{base}/exports/{export_id}",
                                     headers={"authorization": f"Bearer {key}"})
        t = time.monotonic()
        size = 0
        with urllib.request.urlopen(req) as r, open(bundle, "wb") as out:
            while chunk := r.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        download_s = time.monotonic() - t
        download_rss = peak_rss_mb(server.pid)
        verifier = urllib.request.urlopen(
            f"{base}/.well-known/runledger/checkpoint-key").read().decode().strip()
    finally:
        server.terminate()
        server.wait()
    t = time.monotonic()
    report = json.loads(run([bin_, "verify-bundle", bundle, "--public-key", verifier]))
    verify_s = time.monotonic() - t
    assert report["status"] == "VERIFIED", report
    return {
        "runs": runs, "steps_per_run": steps, "seed_s": round(seeded_s, 1),
        "records": records, "bundle_mb": round(size / 1e6, 1),
        "build_s": round(build_s, 2), "build_records_per_s": round(records / build_s),
        "server_rss_idle_mb": round(idle_rss), "server_peak_rss_after_build_mb": round(build_rss),
        "server_peak_rss_after_download_mb": round(download_rss),
        "download_s": round(download_s, 2), "download_mb_per_s": round(size / 1e6 / download_s),
        "verify_s": round(verify_s, 2),
        "verify_records_per_s": round(report["records_checked"] / verify_s),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/runledger")
    p.add_argument("--postgres")
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="runledger-export-bench-") as work:
        targets = [("sqlite", os.path.join(work, "bench.db"))]
        if a.postgres:
            name = f"runledger_export_bench_{os.getpid()}"
            run(["psql", a.postgres, "-qc", f"CREATE DATABASE {name}"])
            targets.append(("postgres", a.postgres.rsplit("/", 1)[0] + "/" + name))
        for backend, url in targets:
            sub = os.path.join(work, backend)
            os.mkdir(sub)
            print(json.dumps({"backend": backend, **measure(a.bin, url, a.runs, a.steps, sub)}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
