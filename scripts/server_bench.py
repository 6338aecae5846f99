#!/usr/bin/env python3
"""Benchmarks `kpt serve`: requests/s and p50/p99 latency with wrk at several concurrencies,
without and with dynamic batching, next to the raw Session rate from `kpt bench` (the
server's overhead). Prints a Markdown table with the rows per execution and the share of the
batcher's concatenation and split in the compute time (from the statistics endpoint), and the
batching speed-up; numbers depend on the machine and its load.

Usage:
  server_bench.py --kpt build/kpt --model M.onnx --input NAME=DIMS [--input ...]
                  [--concurrency 1,16,64] [--seconds 10] [--max-batch-size 16]
                  [--batch-delay-us 2000] [--no-batching-only] [--warmup-seconds 3] [--rounds 1]
                  [--threads-per-instance N]
Inputs are random (ints in [0, 100) for integer inputs, so token ids stay in range);
outputs are asked for as binary tensors so that response encoding does not dominate.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LUA = os.path.join(ROOT, "tests", "server", "post_file.lua")
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
from server_fixture import Server  # noqa: E402

NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def parse_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise RuntimeError(f"wrk printed a latency this script cannot read: {text!r}")
    v, unit = float(m.group(1)), m.group(2)
    return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60000}[unit]


def run_wrk(url, body_file, connections, seconds):
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s",
                          "--latency", "-s", LUA, url], env=dict(os.environ, KPT_BODY=body_file),
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # Lines of wrk's "Latency Distribution" block, not the "+/- Stdev" column of its stats.
    p50_line = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    if not p50_line:
        raise RuntimeError("wrk reported no latency distribution (no request completed?):\n" + out)
    p50 = parse_ms(p50_line.group(1))
    p99 = parse_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in m.groups()) if m else 0
    return rps, p50, p99, errors


def execution_totals(srv):
    """(executions, rows, compute ns, concat + split ns) of model m, from the statistics endpoint."""
    status, _, body = srv.request("GET", "/v2/models/m/stats")
    if status != 200:  # a server without the statistics extension
        return None
    stats = json.loads(body)["model_stats"][0]
    inf = stats["inference_stats"]
    concat_split = sum(b["compute_input"]["ns"] + b["compute_output"]["ns"] for b in stats["batch_stats"])
    infer = sum(b["compute_infer"]["ns"] for b in stats["batch_stats"])
    return stats["execution_count"], stats["inference_count"], infer, concat_split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kpt", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", action="append", default=[], help="NAME=DIMS like input_ids=1x16")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--max-batch-size", type=int, default=16)
    ap.add_argument("--batch-delay-us", type=int, default=2000)
    ap.add_argument("--no-batching-only", action="store_true")
    ap.add_argument("--raw-iterations", type=int, default=50)
    ap.add_argument("--warmup-seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved measurements per configuration")
    ap.add_argument("--threads-per-instance", type=int, default=0, help="passed to every server (0: its default)")
    args = ap.parse_args()
    kpt = os.path.abspath(args.kpt)
    shapes = {s.split("=")[0]: [int(d) for d in s.split("=")[1].split("x")] for s in args.input}
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # The raw Session: same inputs, in-process, one at a time.
        raw_json = os.path.join(tmp, "raw.json")
        subprocess.run([kpt, "bench", args.model, "--iterations", str(args.raw_iterations), "--json", raw_json] +
                       sum((["--input", s] for s in args.input), []), check=True, capture_output=True)
        with open(raw_json) as f:
            raw = json.load(f)
        configs = [("no batching", [])]
        if not args.no_batching_only:
            configs.append((f"dynamic batching (max {args.max_batch_size}, delay {args.batch_delay_us} us)",
                            ["--max-batch-size", str(args.max_batch_size), "--dynamic-batching",
                             "--batch-delay-us", str(args.batch_delay_us)]))
        # Every configuration's server runs from the start and their measurements alternate
        # round by round, so that a machine whose load drifts treats them alike; an idle
        # server costs nothing.
        servers = {}
        try:
            for label, flags in configs:
                threads = ["--threads-per-instance", str(args.threads_per_instance)] if args.threads_per_instance else []
                servers[label] = Server(kpt, [args.model, "--model-name", "m"] + flags + threads)
            srv = servers[configs[0][0]]
            status, _, meta = srv.request("GET", "/v2/models/m")
            meta = json.loads(meta)
            rng = np.random.default_rng(0)
            inputs = []
            for i in meta["inputs"]:
                dims = shapes.get(i["name"]) or [d if d >= 0 else 1 for d in i["shape"]]
                dt = NUMPY[i["datatype"]]
                data = rng.integers(0, 100, dims) if np.issubdtype(dt, np.integer) else rng.standard_normal(dims)
                inputs.append({"name": i["name"], "shape": dims, "datatype": i["datatype"],
                               "data": np.asarray(data, dtype=dt).flatten().tolist()})
            body_file = os.path.join(tmp, "body.json")
            with open(body_file, "w") as f:
                json.dump({"inputs": inputs, "parameters": {"binary_data_output": True}}, f)
            url = {label: f"http://127.0.0.1:{srv.port}/v2/models/m/infer" for label, srv in servers.items()}
            for label in servers:
                run_wrk(url[label], body_file, 1, 3)  # warm-up (long enough for a slow model to answer)
            for c in levels:
                # Warm-up at this concurrency too: the batch sizes it forms are new shapes,
                # planned (arena, primitives) on their first run.
                for label in servers:
                    run_wrk(url[label], body_file, c, args.warmup_seconds)
                runs = {label: [] for label in servers}
                for _ in range(args.rounds):
                    for label, srv in servers.items():
                        before = execution_totals(srv)
                        rps, p50, p99, errors = run_wrk(url[label], body_file, c, args.seconds)
                        # Requests still running when wrk stops finish before the totals are read.
                        time.sleep(0.2)
                        after = execution_totals(srv)
                        totals = [a - b for a, b in zip(after, before)] if before and after else None
                        runs[label].append((rps, p50, p99, errors, totals))
                        print(f"{label}, concurrency {c}: {rps:.1f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
                              f"errors {errors}", file=sys.stderr)
                for label, rs in runs.items():
                    median = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
                    per_exec = concat_share = float("nan")
                    if all(r[4] for r in rs):
                        execs, rows_run, infer_ns, concat_ns = (sum(r[4][k] for r in rs) for k in range(4))
                        per_exec = rows_run / max(execs, 1)
                        concat_share = 100 * concat_ns / max(infer_ns, 1)
                    rows.append((label, c, median(0), median(1), median(2), sum(r[3] for r in rs), per_exec,
                                 concat_share))
        finally:
            for srv in servers.values():
                srv.stop()
    print(f"Model `{args.model}`, inputs {' '.join(args.input) or 'as declared'}, wrk {args.seconds} s per run, "
          f"{args.rounds} interleaved round(s): medians of requests/s, p50 and p99; errors summed.\n")
    print(f"Raw `Session` (`kpt bench`, {args.raw_iterations} runs): p50 {raw['latency_ms']['p50']:.3f} ms, "
          f"p99 {raw['latency_ms']['p99']:.3f} ms, {raw['throughput_per_s']:.1f} runs/s\n")
    print("| server | concurrency | requests/s | p50 ms | p99 ms | errors | rows/execution | concat+split |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, c, rps, p50, p99, errors, per_exec, concat_share in rows:
        print(f"| {label} | {c} | {rps:.1f} | {p50:.3f} | {p99:.3f} | {errors} | {per_exec:.1f} | "
              f"{concat_share:.2f}% |")
    base = {r[1]: r[2] for r in rows if r[0] == "no batching"}
    for label, c, rps, *_ in rows:
        if label != "no batching" and base.get(c):
            print(f"\nDynamic batching at concurrency {c}: {rps / base[c]:.2f}x the requests/s of no batching")
    one = [r for r in rows if r[1] == 1 and r[0] == "no batching"]
    if one:
        over = one[0][3] - raw["latency_ms"]["p50"]
        print(f"\nServer overhead at concurrency 1 (p50): {over:.3f} ms "
              f"({100 * over / max(raw['latency_ms']['p50'], 1e-9):.0f}% of the raw session's p50)")


if __name__ == "__main__":
    main()
