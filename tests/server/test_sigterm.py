#!/usr/bin/env python3
"""SIGTERM during load: every request already sent is answered 200, then `kpt serve` exits 0.

Usage: test_sigterm.py KPT_BINARY
"""
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_fixture import Server, make_repository  # noqa: E402


def main():
    kpt = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        make_repository(repo)
        # Two instances and a queue large enough for all: each request takes ~0.1 s, so many
        # are queued or running when the signal comes.
        srv = Server(kpt, [os.path.join(repo, "slow", "1", "model.onnx"), "--model-name", "slow",
                           "--instances", "2", "--max-queue", "64"])
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 512], "datatype": "FP32",
                                       "data": [0.01] * 512}]})
        results, sent = [], threading.Barrier(17)

        def call():
            c = srv.conn(timeout=120)
            c.request("POST", "/v2/models/slow/infer", body=body)
            sent.wait()
            r = c.getresponse()
            results.append((r.status, r.read()))

        threads = [threading.Thread(target=call) for _ in range(16)]
        for t in threads:
            t.start()
        sent.wait()
        # SIGTERM once the server has read all 16 (requests still unread in a socket buffer
        # are served too, but this makes every one of them in flight for certain).
        deadline = time.time() + 30
        while time.time() < deadline:
            _, _, text = srv.request("GET", "/metrics")
            m = re.search(rb"^kpt_requests_in_flight (\d+)", text, re.M)
            if m and int(m.group(1)) >= 17:  # the 16 and this /metrics request
                break
            time.sleep(0.01)
        t0 = time.time()
        code, err = srv.stop(timeout=120)
        for t in threads:
            t.join()
        print(f"server exited {code} after {time.time() - t0:.2f}s; stderr: {err.strip()}")
        statuses = [s for s, _ in results]
        print("statuses:", statuses)
        ok = code == 0 and statuses == [200] * 16
        for s, b in results:
            if s != 200:
                print("  error body:", b[:200])
        # Nothing listens any more.
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
            print("FAIL: the port still accepts connections after exit")
            ok = False
        except OSError:
            pass
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
