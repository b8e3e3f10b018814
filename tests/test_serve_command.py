"""`ember serve ARTIFACT`: starts a local Ray instance, prints the URL, answers HTTP requests
with the artifact's outputs, and shuts down cleanly on Ctrl-C (SIGINT)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
import torch

import ember
from compare import assert_close

pytest.importorskip("ray.serve")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from examples.mlp_block import MLPBlock  # noqa: E402


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(tmp_path):
    torch.manual_seed(0)
    model = MLPBlock(32, 64).eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    artifact = str(tmp_path / "mlp.ember")
    ember.compile(model, (torch.randn(2, 32),), dynamic_shapes={"x": {0: batch}}).save(artifact)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "ember.tools.cli", "serve", artifact, "--port", str(port),
         "--replicas", "1", "--threads", "1", "--max-batch", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        timer = threading.Timer(120, server.kill)
        timer.start()
        for line in server.stdout:
            lines.append(line)
            if line.startswith("serving "):
                break
        timer.cancel()
        assert f"at http://127.0.0.1:{port}/" in lines[-1], "".join(lines[-20:])
        x = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", data=json.dumps({"inputs": {"x": x.tolist()}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = np.asarray(json.loads(response.read())["outputs"]["output_0"], np.float32)
        with torch.no_grad():
            assert_close(answer, model(torch.from_numpy(x)).numpy())
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, rest[-2000:]
    assert "stopping" in rest


def test_serve_refuses_more_cpus_than_the_cluster_has(tmp_path, capsys):
    from ember.tools.cli import main
    artifact = str(tmp_path / "mlp.ember")
    ember.compile(MLPBlock(32, 64).eval(), (torch.randn(2, 32),)).save(artifact)
    assert main(["serve", artifact, "--replicas", "64", "--threads", "4"]) == 1
    assert "64 replicas x 4 threads need 256 CPUs" in capsys.readouterr().err
