"""``mlprov server`` and ``mlprov server token``: the commands, a real server process, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlprov.registry import Registry
from tests.cli.conftest import assert_error

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def registry_dir(tmp_path: Path, keys) -> Path:
    path = tmp_path / "registry"
    Registry.init(path, trust=keys.trust).close()
    return path


def test_token_create_list_revoke(run_cli, registry_dir):
    r = run_cli("server", "token", "create", "--registry", str(registry_dir), "--principal",
                "ci", "--role", "registrar", "--role", "reader", "--expires", "30d")
    assert r.exit_code == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("mlpt_") and len(r.stdout.splitlines()) == 1
    assert "shown once" in r.stderr and token not in r.stderr
    r = run_cli("server", "token", "list", "--registry", str(registry_dir), "--json")
    listed = json.loads(r.stdout)["tokens"]
    assert [(t["principal"], t["roles"], t["state"]) for t in listed] == \
        [("ci", ["reader", "registrar"], "active")]
    assert token not in r.stdout
    token_id = listed[0]["id"]
    assert token.startswith(token_id + "_")
    r = run_cli("server", "token", "revoke", token_id, "--registry", str(registry_dir))
    assert r.exit_code == 0 and r.stdout.strip() == token_id
    r = run_cli("server", "token", "list", "--registry", str(registry_dir))
    assert "revoked" in r.stdout
    r = run_cli("server", "token", "create", "--registry", str(registry_dir), "--principal",
                "ci", "--role", "registrar", "--json", "--expires", "never")
    document = json.loads(r.stdout)
    assert document["token"].startswith("mlpt_") and document["expiresAt"] is None


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["--principal", "bad name", "--role", "reader"], 3, "invalid principal name"),
    (["--principal", "ci", "--role", "Reader"], 3, "invalid role name"),
    (["--principal", "ci", "--role", "reader", "--expires", "1y"], 3, "invalid expiry"),
    (["--principal", "ci"], 2, "--role"),
])
def test_token_create_bad_input(run_cli, registry_dir, args, code, needle):
    r = run_cli("server", "token", "create", "--registry", str(registry_dir), *args)
    assert_error(r, code, needle)


def test_token_commands_need_a_registry(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("MLPROV_REGISTRY", raising=False)
    assert_error(run_cli("server", "token", "list"), 2, "--registry")
    assert_error(run_cli("server", "token", "list", "--registry", "https://h.example"), 2,
                 "not a server")
    assert_error(run_cli("server", "token", "revoke", "nope", "--registry",
                         str(tmp_path / "none")), 3)


def test_server_usage_errors(run_cli, registry_dir, tmp_path):
    bad = tmp_path / "server.toml"
    bad.write_text("[server]\nmax_body = \"lots\"\n")
    assert_error(run_cli("server", "--registry", str(registry_dir), "--config", str(bad)),
                 3, "invalid size for server.max_body")
    bad.write_text("[[grants]]\nprincipals = []\nread = [\"*\"]\n")
    assert_error(run_cli("server", "--registry", str(registry_dir), "--config", str(bad)),
                 3, "names no principals")
    bad.write_text("[surprise]\n")
    assert_error(run_cli("server", "--registry", str(registry_dir), "--config", str(bad)),
                 3, "surprise")
    r = run_cli("server", "--help")
    assert r.exit_code == 0 and "--tls-cert" in r.stdout and "token" in r.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_server_process_starts_serves_and_stops_on_sigterm(registry_dir, tmp_path,
                                                                 run_cli):
    r = run_cli("server", "token", "create", "--registry", str(registry_dir), "--principal",
                "ops", "--role", "reader")
    token = r.stdout.strip()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "MLPROV_REGISTRY_FSYNC": "off"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from mlprov._cli.main import main; main()", "server",
         "--registry", str(registry_dir), "--port", str(port)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/v1/ready", timeout=2) as response:
                    assert json.loads(response.read())["status"] == "ready"
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read() if process.stderr else "") from None
                time.sleep(0.1)
        request = urllib.request.Request(url + "/api/v1/whoami",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["name"] == "ops"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "serving registry" in stderr and "warning: serving plain HTTP" not in stderr
    assert "Traceback" not in stderr


def test_a_non_loopback_listener_without_tls_warns(registry_dir):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    process = subprocess.Popen(
        [sys.executable, "-c", "from mlprov._cli.main import main; main()", "server",
         "--registry", str(registry_dir), "--host", "0.0.0.0", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "warning: serving plain HTTP on 0.0.0.0" in stderr


def test_importing_mlprov_and_its_client_imports_no_server_dependency():
    code = ("import sys, mlprov, mlprov.server, mlprov._cli.main\n"
            "from mlprov.server import RemoteRegistry\n"
            "bad = [m for m in ('starlette', 'uvicorn', 'jwt', 'anyio') if m in sys.modules]\n"
            "print(bad)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, check=True)
    assert done.stdout.strip() == "[]"
