"""A non-Python client: the npm package `soap` run by Node.js against our WSDL.

The test set-up installs `soap` into `.cache/node-soap/` once; the test is skipped, with the
reason, where Node.js or npm is missing or the installation fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.services import tasks
from tests.fixtures.soap.helpers import PATH

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "node-soap"
SCRIPT = ROOT / "tests" / "fixtures" / "soap" / "node_client.js"
SOAP_PACKAGE = "soap@1"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js or npm is not installed")
    modules = CACHE / "node_modules"
    if not (modules / "soap" / "package.json").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit",
                                   "--no-fund", "--loglevel=error", SOAP_PACKAGE],
                                  capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install soap took longer than 4 minutes")
        if done.returncode != 0:
            pytest.skip(f"npm install soap failed: {done.stderr.strip()[-300:]}")
    return modules


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text", "digest"])
def test_the_npm_soap_client_calls_the_service(core, seeded, live_server, node_modules, mode):
    task = core.run(tasks.create_task, seeded["ticket"]["id"], "Line down", "", group="Carrier Group")
    provider = seeded["provider"]
    done = subprocess.run(
        ["node", str(SCRIPT), live_server + PATH + "?wsdl", provider["username"],
         provider["password"], mode, str(task["id"])],
        capture_output=True, text=True, timeout=60,
        env={"NODE_PATH": str(node_modules), "PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert answer["acknowledgement"] == {"taskId": task["id"], "externalReference": "NODE-7",
                                         "requestType": "Acknowledgement", "status": "accepted"}
    assert answer["task"]["externalReference"] == "NODE-7"
    assert answer["task"]["group"] == "Carrier Group"
    assert answer["fault"]["faultstring"] == "TaskNotFound: task 987654 not found"
    assert core.run(tasks.get_task, task["id"])["external_reference"] == "NODE-7"
