"""`liaison simulate-provider`: the simulated provider as a newcomer starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys, liaison_cli; "
                             "sys.exit(liaison_cli.main(sys.argv[1:]))", *args],
                            cwd=env["LIAISON_INSTANCE_PATH"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)})


def test_without_credentials_it_says_what_to_do(tmp_path):
    done = cli("simulate-provider", "--port", str(free_port()),
               env={"LIAISON_INSTANCE_PATH": str(tmp_path)})
    out, err = done.communicate(timeout=60)
    assert done.returncode == 1
    assert err.strip().splitlines() == [
        "liaison: error: no provider credentials: pass --username and --password, "
        "or run `liaison demo` first"]


def test_it_serves_the_provider_contract_on_its_port(tmp_path):
    (tmp_path / "demo-credentials.json").write_text(
        '{"provider_username": "demo-carrier-abc", "provider_password": "pw"}')
    port = free_port()
    running = cli("simulate-provider", "--port", str(port), "--delay", "0.5",
                  env={"LIAISON_INSTANCE_PATH": str(tmp_path)})
    try:
        wsdl = None
        for _ in range(100):
            try:
                wsdl = requests.get(f"http://127.0.0.1:{port}/ProviderService?wsdl", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert wsdl is not None and wsdl.status_code == 200
        assert f'location="http://127.0.0.1:{port}/ProviderService"' in wsdl.text
        assert 'name="SubmitRequest"' in wsdl.text
    finally:
        running.terminate()
        out, _ = running.communicate(timeout=10)
    assert "as demo-carrier-abc after 0.5 s" in out
