"""`liaison simulate-psa` serves a simulated ConnectWise our client talks to."""

from __future__ import annotations

import os
import signal
import subprocess

import requests

from engine.adapters.connectwise_client import ApiError, Connection, ConnectWiseClient
from tests.conftest import free_port
from tests.support import ROOT, liaison, wait_for


def test_simulate_psa_serves_tickets_and_its_state(tmp_path):
    port = free_port()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path),
           "LIAISON_PSA_SIM_PRIVATE_KEY": "cli-private-key"}
    state = tmp_path / "psa.json"
    process = subprocess.Popen(liaison("simulate-psa", "--port", str(port), "--company-id", "acme",
                                       "--public-key", "pub", "--client-id", "cid", "--state",
                                       str(state)),
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v4_6_release/apis/3.0"
    try:
        wait_for(lambda: _answers(url + "/_sim/state"), timeout=60)
        client = ConnectWiseClient(Connection(url, "acme", "pub", "cli-private-key", "cid"))
        ticket = client.create_ticket({"summary": "From the test", "company": {"id": 2}})
        assert client.tickets_by_xref("none") == []
        tickets = requests.get(url + "/_sim/state", timeout=5).json()["tickets"]
        assert [t["summary"] for t in tickets] == ["From the test"]
        assert state.is_file() and str(ticket["id"]) in state.read_text()
        wrong = ConnectWiseClient(Connection(url, "acme", "pub", "wrong-key", "cid"))
        try:
            wrong.system_info()
            raise AssertionError("wrong keys were accepted")
        except ApiError as exc:
            assert exc.status == 401
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=15)[0]
    assert f"simulated ConnectWise at {url}" in output
    assert "cli-private-key" not in output


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False
