#!/usr/bin/env python3
"""Every endpoint of `kpt serve` over real HTTP on loopback, good and bad requests.

Usage: test_endpoints.py KPT_BINARY
Each bad request must get the right status and an {"error": ...} body naming the problem,
and the server must still answer correctly afterwards.
"""
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_fixture import Server, make_repository  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": "Bearer " + TOKEN}


def infer_body(inputs, **extra):
    body = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": dt, "data": a.flatten().tolist()}
                       for n, dt, a in inputs]}
    body.update(extra)
    return body


def add_inputs():
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5) * 0.5
    b = np.ones((3, 4, 5), dtype=np.float32)
    return a, b


def expect_error(srv, method, path, status, fragment, body=None, headers=None):
    h = dict(AUTH)
    h.update(headers or {})
    got, _, data = srv.request(method, path, body=body, headers=h)
    assert got == status, f"{method} {path}: expected {status}, got {got}: {data[:300]!r}"
    if status != 405 or data:
        msg = json.loads(data)["error"]
        assert fragment.lower() in msg.lower(), f"{method} {path}: error {msg!r} lacks {fragment!r}"


def test_health_and_metadata(srv, repo):
    assert srv.request("GET", "/v2/health/live")[0] == 200
    assert srv.request("GET", "/v2/health/ready")[0] == 200
    status, _, body = srv.request("GET", "/v2", headers=AUTH)
    assert status == 200 and json.loads(body)["name"] == "kpt"
    assert "binary_tensor_data" in json.loads(body)["extensions"]
    status, _, body = srv.request("GET", "/v2/models/add", headers=AUTH)
    meta = json.loads(body)
    assert status == 200, body
    assert meta["name"] == "add" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [3, 4, 5]},
                              {"name": "INPUT1", "datatype": "FP32", "shape": [3, 4, 5]}]
    status, _, body = srv.request("GET", "/v2/models/batch", headers=AUTH)
    assert json.loads(body)["versions"] == ["1", "2"] and json.loads(body)["inputs"][0]["shape"] == [-1, 4]
    status, _, body = srv.request("GET", "/v2/models/batch/versions/1", headers=AUTH)
    assert status == 200 and json.loads(body)["versions"] == ["1"]
    assert srv.request("GET", "/v2/models/add/ready", headers=AUTH)[0] == 200
    assert srv.request("GET", "/v2/models/batch/versions/2/ready", headers=AUTH)[0] == 200
    status, _, body = srv.request("GET", "/v2/models/batch/config", headers=AUTH)
    assert status == 200 and json.loads(body)["max_batch_size"] == 16


def test_auth(srv, repo):
    status, headers, body = srv.request("GET", "/v2")
    assert status == 401 and "authorization" in json.loads(body)["error"].lower()
    assert headers.get("www-authenticate") == "Bearer"
    status, _, body = srv.request("GET", "/v2/models/add", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and "wrong" in json.loads(body)["error"]
    a, b = add_inputs()
    status, _, _ = srv.request("POST", "/v2/models/add/infer",
                               body=infer_body([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)]))
    assert status == 401
    assert srv.request("GET", "/metrics")[0] == 401


def test_infer_json(srv, repo):
    a, b = add_inputs()
    c = srv.conn()  # one keep-alive connection for several requests
    for _ in range(3):
        status, headers, body = srv.request("POST", "/v2/models/add/infer", headers=AUTH, conn=c,
                                            body=infer_body([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)], id="r1"))
        assert status == 200, body
        out = json.loads(body)
        assert out["model_name"] == "add" and out["model_version"] == "1" and out["id"] == "r1"
        o = out["outputs"][0]
        assert o["name"] == "OUTPUT0" and o["datatype"] == "FP32" and o["shape"] == [3, 4, 5]
        np.testing.assert_allclose(np.array(o["data"], dtype=np.float32).reshape(3, 4, 5), a + b)
    c.close()
    # Nested data arrays are accepted as well as flat ones.
    nested = {"inputs": [{"name": "INPUT0", "shape": [3, 4, 5], "datatype": "FP32", "data": a.tolist()},
                         {"name": "INPUT1", "shape": [3, 4, 5], "datatype": "FP32", "data": b.tolist()}]}
    status, _, body = srv.request("POST", "/v2/models/add/infer", body=nested, headers=AUTH)
    assert status == 200, body
    # Integers, and a chosen version.
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    status, _, body = srv.request("POST", "/v2/models/batch/versions/1/infer", headers=AUTH,
                                  body=infer_body([("x", "FP32", x)]))
    assert status == 200 and json.loads(body)["outputs"][0]["data"] == [2, 4, 6, 8], body
    status, _, body = srv.request("POST", "/v2/models/batch/infer", headers=AUTH, body=infer_body([("x", "FP32", x)]))
    assert json.loads(body)["model_version"] == "2" and json.loads(body)["outputs"][0]["data"] == [3, 6, 9, 12]
    ia = np.array([1, -2, 3 << 40], dtype=np.int64)
    status, _, body = srv.request("POST", "/v2/models/ints/infer", headers=AUTH,
                                  body=infer_body([("a", "INT64", ia), ("b", "INT64", ia)]))
    assert status == 200 and json.loads(body)["outputs"][0]["data"] == (ia * 2).tolist(), body


def test_expect_continue(srv, repo):
    # curl sends "Expect: 100-continue" before large bodies and waits for the interim answer.
    a, b = add_inputs()
    payload = json.dumps(infer_body([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)])).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
              b"\r\nExpect: 100-continue\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n")
    interim = s.recv(4096)
    assert interim.startswith(b"HTTP/1.1 100"), interim[:100]
    s.sendall(payload)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += s.recv(65536)
    s.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def binary_request(inputs, binary_outputs=True, outputs=None):
    header = {"inputs": [], "parameters": {"binary_data_output": binary_outputs}}
    blobs = b""
    for name, dt, arr in inputs:
        raw = arr.tobytes()
        header["inputs"].append({"name": name, "shape": list(arr.shape), "datatype": dt,
                                 "parameters": {"binary_data_size": len(raw)}})
        blobs += raw
    if outputs is not None:
        header["outputs"] = outputs
    h = json.dumps(header).encode()
    return h + blobs, {"Inference-Header-Content-Length": str(len(h)), "Content-Type": "application/octet-stream"}


def test_infer_binary(srv, repo):
    a, b = add_inputs()
    body, headers = binary_request([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)])
    headers.update(AUTH)
    status, rh, data = srv.request("POST", "/v2/models/add/infer", body=body, headers=headers)
    assert status == 200, data
    n = int(rh["inference-header-content-length"])
    meta = json.loads(data[:n])
    o = meta["outputs"][0]
    assert o["parameters"]["binary_data_size"] == 240 and "data" not in o
    np.testing.assert_allclose(np.frombuffer(data[n:], dtype=np.float32).reshape(3, 4, 5), a + b)
    # Binary inputs, JSON output chosen per output.
    body, headers = binary_request([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)], binary_outputs=False,
                                   outputs=[{"name": "OUTPUT0", "parameters": {"binary_data": False}}])
    headers.update(AUTH)
    status, rh, data = srv.request("POST", "/v2/models/add/infer", body=body, headers=headers)
    assert status == 200 and "inference-header-content-length" not in rh
    np.testing.assert_allclose(np.array(json.loads(data)["outputs"][0]["data"]), (a + b).flatten())
    # A size that does not match the shape.
    body, headers = binary_request([("INPUT0", "FP32", a), ("INPUT1", "FP32", b)])
    headers.update(AUTH)
    expect_error(srv, "POST", "/v2/models/add/infer", 400, "binary data", body=body[:-4], headers=headers)
    expect_error(srv, "POST", "/v2/models/add/infer", 400, "not a byte count", body=body,
                 headers={"Inference-Header-Content-Length": "12x"})
    expect_error(srv, "POST", "/v2/models/add/infer", 400, "Inference-Header-Content-Length", body=body,
                 headers={"Inference-Header-Content-Length": str(len(body) + 1)})


def test_bad_requests(srv, repo):
    a, b = add_inputs()
    good = [("INPUT0", "FP32", a), ("INPUT1", "FP32", b)]
    p = "/v2/models/add/infer"
    expect_error(srv, "POST", p, 400, "shape [3,4,4]",
                 body=infer_body([("INPUT0", "FP32", a[:, :, :4]), ("INPUT1", "FP32", b[:, :, :4])]))
    expect_error(srv, "POST", p, 400, "datatype FP64, the model expects FP32",
                 body=infer_body([("INPUT0", "FP64", a.astype(np.float64)), ("INPUT1", "FP32", b)]))
    expect_error(srv, "POST", p, 400, "unexpected input 'nope'",
                 body=infer_body(good + [("nope", "FP32", a)]))
    expect_error(srv, "POST", p, 400, "missing input 'INPUT1'", body=infer_body(good[:1]))
    expect_error(srv, "POST", p, 400, "malformed JSON", body='{"inputs": [')
    expect_error(srv, "POST", p, 400, "'inputs' array", body='{"id": "x"}')
    expect_error(srv, "POST", p, 400, "unknown datatype 'FLOAT32'",
                 body=infer_body([("INPUT0", "FLOAT32", a), ("INPUT1", "FP32", b)]))
    bad = infer_body(good)
    bad["inputs"][0]["data"] = bad["inputs"][0]["data"][:-1]
    expect_error(srv, "POST", p, 400, "holds 59 elements", body=bad)
    bad = infer_body(good)
    bad["inputs"][0]["data"][3] = "x"
    expect_error(srv, "POST", p, 400, "expected a number", body=bad)
    expect_error(srv, "POST", p, 400, "unknown output 'zzz'", body=infer_body(good, outputs=[{"name": "zzz"}]))
    ia = np.array([1], dtype=np.int64)
    bad = infer_body([("a", "INT64", ia), ("b", "INT64", ia)])
    bad["inputs"][0]["data"] = [1.5]
    expect_error(srv, "POST", "/v2/models/ints/infer", 400, "expected an integer", body=bad)
    x = np.zeros((17, 4), dtype=np.float32)
    expect_error(srv, "POST", "/v2/models/batch/infer", 400, "max_batch_size", body=infer_body([("x", "FP32", x)]))
    expect_error(srv, "POST", "/v2/models/nosuch/infer", 404, "unknown model 'nosuch'", body=infer_body(good))
    expect_error(srv, "POST", "/v2/models/add/versions/7/infer", 404, "no version '7'", body=infer_body(good))
    expect_error(srv, "GET", "/v2/models/add/versions/abc", 404, "no version 'abc'")
    expect_error(srv, "GET", "/v2/models/nosuch/ready", 404, "unknown model")
    expect_error(srv, "GET", "/v2/nothing/here", 404, "unknown endpoint")
    expect_error(srv, "GET", p, 405, "not allowed")
    expect_error(srv, "POST", "/v2/repository/models/..%2F..%2Fetc/load", 400, "invalid model name")
    expect_error(srv, "POST", "/v2/repository/models/.hidden/load", 400, "invalid model name")
    # Larger than --max-body-mb 1: refused before the body is read whole.
    big = b"[" + b"0," * (600 * 1024) + b"0]"
    expect_error(srv, "POST", p, 413, "exceeds the limit", body=big)
    # Garbage that is not HTTP at all.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    reply = s.recv(4096)
    s.close()
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    # Still healthy and correct afterwards.
    assert srv.request("GET", "/v2/health/ready")[0] == 200
    status, _, body = srv.request("POST", p, body=infer_body(good), headers=AUTH)
    assert status == 200, body


def run_concurrent_tripling(srv, model, version, make_input, n=12):
    """Sends n concurrent requests to a model computing 3 * x, checks every answer has its own
    shape and values, and returns how many executions the server ran for them."""
    labels = f'model="{model}",version="{version}"'
    before = srv.metric("nv_inference_exec_count", labels, AUTH) or 0
    results = {}

    def call(i):
        x = make_input(i)
        status, _, body = srv.request("POST", f"/v2/models/{model}/infer",
                                      body=infer_body([("x", "FP32", x)]), headers=AUTH)
        results[i] = (status, body, x)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (status, body, x) in results.items():
        assert status == 200, body
        out = json.loads(body)["outputs"][0]
        assert out["shape"] == list(x.shape) and out["data"] == (x * 3).flatten().tolist(), (i, out)
    return srv.metric("nv_inference_exec_count", labels, AUTH) - before


def test_dynamic_batching(srv, repo):
    n = 12
    execs = run_concurrent_tripling(
        srv, "batch", "2", lambda i: np.full((1 + i % 2, 4), i, dtype=np.float32), n)
    assert execs < n, f"{n} concurrent requests ran in {execs} executions: no batching"


def test_batching_keeps_shapes_apart(srv, repo):
    # Requests whose non-batch dims differ (sequences of different lengths) are never
    # concatenated: each batch holds one shape, and every answer has its own shape and values.
    n = 12
    execs = run_concurrent_tripling(
        srv, "seqbatch", "1",
        lambda i: np.arange((2 + i % 3) * (1 + i % 2), dtype=np.float32).reshape(1 + i % 2, 2 + i % 3) + i,
        n)
    # Three sequence lengths: at least three executions, and batching joined some requests.
    assert 3 <= execs < n, f"{n} requests of 3 shapes ran in {execs} executions"


# Rows that keep the slow model busy for a few hundred ms, so that requests queue behind it.
OCCUPY_ROWS = 8


def slow_body(rows=1):
    return infer_body([("x", "FP32", np.full((rows, 512), 0.01, dtype=np.float32))])


def test_queue_full_timeout_and_cancel(srv, repo):
    # slow has one instance and max_queue_size 2: a burst of 10 must see 503s, and no other error.
    statuses = []
    lock = threading.Lock()

    def call():
        status, headers, body = srv.request("POST", "/v2/models/slow/infer", body=slow_body(), headers=AUTH)
        with lock:
            statuses.append((status, headers.get("retry-after"), body))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(s for s, _, _ in statuses)
    assert set(codes) <= {200, 503} and 503 in codes and 200 in codes, codes
    assert all(r == "1" for s, r, _ in statuses if s == 503)
    assert any(b"max_queue_size" in b for s, _, b in statuses if s == 503)
    # A request whose timeout passes while it waits behind a slow one.
    occupy = threading.Thread(target=lambda: srv.request("POST", "/v2/models/slow/infer", body=slow_body(OCCUPY_ROWS), headers=AUTH))
    occupy.start()
    time.sleep(0.05)
    body = slow_body()
    body["parameters"] = {"timeout": 1000}
    status, _, data = srv.request("POST", "/v2/models/slow/infer", body=body, headers=AUTH)
    occupy.join()
    assert status == 503 and b"timeout" in data, (status, data)
    # A client that goes away: its queued request is dropped, not run.
    before = srv.metric("kpt_inference_cancelled", 'model="slow",version="1"', AUTH) or 0
    occupy = threading.Thread(target=lambda: srv.request("POST", "/v2/models/slow/infer", body=slow_body(OCCUPY_ROWS), headers=AUTH))
    occupy.start()
    time.sleep(0.05)
    payload = json.dumps(slow_body()).encode()
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
              b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    time.sleep(0.01)
    s.close()
    occupy.join()
    time.sleep(0.5)
    after = srv.metric("kpt_inference_cancelled", 'model="slow",version="1"', AUTH)
    assert after == before + 1, (before, after)


def test_metrics(srv, repo):
    status, headers, body = srv.request("GET", "/metrics", headers=AUTH)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    for name in ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
                 "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                 "nv_inference_compute_infer_duration_us", "kpt_request_duration_seconds_bucket",
                 "kpt_batch_size_bucket", "kpt_requests_in_flight", "kpt_process_resident_memory_bytes"]:
        assert name in text, name
    ok = srv.metric("nv_inference_request_success", 'model="add",version="1"', AUTH)
    failed = srv.metric("nv_inference_request_failure", 'model="add",version="1"', AUTH)
    assert ok >= 6 and failed >= 10, (ok, failed)


def test_statistics(srv, repo):
    status, _, body = srv.request("GET", "/v2/models/stats", headers=AUTH)
    assert status == 200, body
    stats = {(e["name"], e["version"]): e for e in json.loads(body)["model_stats"]}
    assert ("add", "1") in stats and ("batch", "2") in stats and ("batch", "1") in stats, stats.keys()
    for (name, version), e in stats.items():
        labels = f'model="{name}",version="{version}"'
        inf = e["inference_stats"]
        # One source of truth: the statistics agree with the Prometheus counters.
        assert inf["success"]["count"] == srv.metric("nv_inference_request_success", labels, AUTH), name
        assert inf["fail"]["count"] == srv.metric("nv_inference_request_failure", labels, AUTH), name
        assert e["execution_count"] == srv.metric("nv_inference_exec_count", labels, AUTH), name
        assert e["inference_count"] == srv.metric("nv_inference_count", labels, AUTH), name
        assert e["execution_count"] == sum(b["compute_infer"]["count"] for b in e["batch_stats"])
        assert e["inference_count"] == sum(b["batch_size"] * b["compute_infer"]["count"] for b in e["batch_stats"])
        for key in ["success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
                    "cache_hit", "cache_miss"]:
            assert set(inf[key]) == {"count", "ns"}, (name, key)
    add = stats[("add", "1")]
    assert add["inference_stats"]["success"]["count"] >= 6 and add["inference_stats"]["success"]["ns"] > 0
    assert add["inference_stats"]["fail"]["count"] >= 10
    assert add["last_inference"] > 1.6e12  # Unix milliseconds
    batch = stats[("batch", "2")]
    assert any(b["batch_size"] > 2 for b in batch["batch_stats"]), batch["batch_stats"]
    status, _, body = srv.request("GET", "/v2/models/batch/stats", headers=AUTH)
    assert status == 200 and [e["version"] for e in json.loads(body)["model_stats"]] == ["1", "2"], body
    status, _, body = srv.request("GET", "/v2/models/batch/versions/2/stats", headers=AUTH)
    one = json.loads(body)["model_stats"]
    assert status == 200 and len(one) == 1 and one[0]["version"] == "2", body
    expect_error(srv, "GET", "/v2/models/nosuch/stats", 404, "unknown model 'nosuch'")
    expect_error(srv, "GET", "/v2/models/batch/versions/9/stats", 404, "no version '9'")
    expect_error(srv, "POST", "/v2/models/stats", 405, "not allowed")
    assert srv.request("GET", "/v2/models/stats")[0] == 401
    assert "statistics" in json.loads(srv.request("GET", "/v2", headers=AUTH)[2])["extensions"]


def test_triton_text_config_and_engine_file(srv, repo):
    # A Triton config.pbtxt, and the model as model.kpt: Session::open reads it (today as ONNX,
    # by its contents; engine files once they land).
    os.makedirs(os.path.join(repo, "triton", "3"))
    with open(os.path.join(repo, "batch", "2", "model.onnx"), "rb") as f:
        model = f.read()
    with open(os.path.join(repo, "triton", "3", "model.kpt"), "wb") as f:
        f.write(model)
    with open(os.path.join(repo, "triton", "config.pbtxt"), "w") as f:
        f.write('name: "triton"\nmax_batch_size: 8  # rows\n'
                'input [ { name: "x", data_type: TYPE_FP32, dims: [ 4 ] } ]\n'
                'dynamic_batching { max_queue_delay_microseconds: 3000\n'
                '  default_queue_policy { max_queue_size: 32 } }\n'
                'instance_group [ { count: 1, kind: KIND_CPU } ]\n')
    assert srv.request("POST", "/v2/repository/models/triton/load", headers=AUTH)[0] == 200
    status, _, body = srv.request("GET", "/v2/models/triton/config", headers=AUTH)
    config = json.loads(body)
    assert status == 200 and config["max_batch_size"] == 8, body
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 3000 and config["max_queue_size"] == 32
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    status, _, body = srv.request("POST", "/v2/models/triton/infer", headers=AUTH, body=infer_body([("x", "FP32", x)]))
    out = json.loads(body)
    assert status == 200 and out["model_version"] == "3" and out["outputs"][0]["data"] == [3, 6, 9, 12], body
    with open(os.path.join(repo, "triton", "config.pbtxt"), "w") as f:
        f.write('max_batch_size: 8\ndynamic_batching {\n  max_queue_delay_microsecond: 5\n}\n')
    expect_error(srv, "POST", "/v2/repository/models/triton/load", 400,
                 "config.pbtxt:3: unknown field 'max_queue_delay_microsecond' in dynamic_batching")
    # The failed reload left the loaded version serving.
    status, _, body = srv.request("POST", "/v2/models/triton/infer", headers=AUTH, body=infer_body([("x", "FP32", x)]))
    assert status == 200, body


def test_repository(srv, repo):
    status, _, body = srv.request("POST", "/v2/repository/index", headers=AUTH)
    index = json.loads(body)
    assert status == 200 and {"name": "batch", "version": "2", "state": "READY"} in index, index
    assert srv.request("POST", "/v2/repository/models/batch/unload", headers=AUTH)[0] == 200
    expect_error(srv, "GET", "/v2/models/batch/ready", 404, "unloaded")
    expect_error(srv, "POST", "/v2/models/batch/infer", 404, "not available",
                 body=infer_body([("x", "FP32", np.zeros((1, 4), np.float32))]))
    index = json.loads(srv.request("POST", "/v2/repository/index", headers=AUTH)[2])
    assert {"name": "batch", "state": "UNAVAILABLE", "reason": "unloaded"} in index, index
    ready = json.loads(srv.request("POST", "/v2/repository/index", body={"ready": True}, headers=AUTH)[2])
    assert ready and all(e["state"] == "READY" for e in ready) and "batch" not in [e["name"] for e in ready], ready
    expect_error(srv, "POST", "/v2/repository/index", 400, "'ready' must be", body={"ready": 1})
    assert srv.request("POST", "/v2/repository/models/batch/load", headers=AUTH)[0] == 200
    assert srv.request("GET", "/v2/models/batch/versions/2/ready", headers=AUTH)[0] == 200
    # A model added to the folder after startup, then one that does not load.
    os.makedirs(os.path.join(repo, "late", "1"))
    with open(os.path.join(repo, "add", "1", "model.onnx"), "rb") as f:
        model = f.read()
    with open(os.path.join(repo, "late", "1", "model.onnx"), "wb") as f:
        f.write(model)
    assert srv.request("POST", "/v2/repository/models/late/load", headers=AUTH)[0] == 200
    assert srv.request("GET", "/v2/models/late/ready", headers=AUTH)[0] == 200
    os.makedirs(os.path.join(repo, "broken", "1"))
    with open(os.path.join(repo, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"this is not a model")
    expect_error(srv, "POST", "/v2/repository/models/broken/load", 400, "cannot load model 'broken'")
    with open(os.path.join(repo, "broken", "config.json"), "w") as f:
        f.write('{"max_batch_size": 4, "dynamic_batchin": {}}')
    expect_error(srv, "POST", "/v2/repository/models/broken/load", 400, "unknown field 'dynamic_batchin'")
    expect_error(srv, "POST", "/v2/repository/models/ghost/load", 404, "no model 'ghost'")
    assert srv.request("GET", "/v2/health/ready")[0] == 200


def main():
    kpt = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        make_repository(repo)
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        srv = Server(kpt, ["--model-repository", repo, "--auth-token-file", token_file, "--max-body-mb", "1"])
        try:
            for name, fn in list(globals().items()):
                if not name.startswith("test_"):
                    continue
                t0 = time.time()
                try:
                    fn(srv, repo)
                    print(f"PASS {name} ({time.time() - t0:.2f}s)")
                except Exception as e:  # report every test, then fail
                    failures += 1
                    print(f"FAIL {name}: {type(e).__name__}: {e}")
        finally:
            code, err = srv.stop()
            print("server stderr:", err.strip().replace("\n", " | "))
            if code != 0:
                print(f"FAIL server exit status {code} after SIGTERM")
                failures += 1
    print("failures:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
