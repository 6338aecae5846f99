"""Starts `kpt serve` on a free loopback port for the server tests and talks HTTP to it."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def make_repository(directory, slow_layers=48):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "server_make_models.py"), directory,
                    "--slow-layers", str(slow_layers)], check=True)


class Server:
    """A running `kpt serve`; the port comes from its 'listening on' line."""

    def __init__(self, kpt, args, env=None):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([kpt, "serve", "--http-port", "0"] + args, stdout=self.log,
                                     stderr=subprocess.PIPE, env=env, text=True)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("kpt serve did not start: " + (self.proc.stderr.read() or ""))

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, headers dict, body bytes)."""
        c = conn or self.conn()
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def metric(self, name, labels, headers=None):
        status, _, body = self.request("GET", "/metrics", headers=headers)
        assert status == 200, status
        for line in body.decode().splitlines():
            if line.startswith(name + "{" + labels + "}"):
                return float(line.split()[-1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        rest = self.proc.communicate(timeout=timeout)[1]
        return self.proc.returncode, rest
