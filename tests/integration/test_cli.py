"""The `liaison` console script as a user runs it: one-line errors, exit codes, outputs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import liaison

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["init-db", "serve", "worker", "smtp", "deploy", "ingest-eml", "create-user",
            "create-token", "create-provider", "demo", "replay", "dry-run", "set-members",
            "add-member"]


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "inst"),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'inst' / 'cli.db'}"}
    env.pop("LIAISON_SECRET_KEY", None)

    def run(*args, stdin=""):
        return subprocess.run(liaison(*args), input=stdin, capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120)
    return run


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(run, command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert "usage: liaison" in result.stdout


def test_usage_errors_exit_2_and_failures_exit_1_without_traceback(run, tmp_path):
    assert run("no-such-command").returncode == 2
    assert run("init-db").returncode == 0
    bad = tmp_path / "bad.bpmn"
    bad.write_text("<definitions>")
    result = run("deploy", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run("create-token", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_users_tokens_providers_and_deploy(run, tmp_path):
    assert run("init-db").returncode == 0
    created = run("create-user", "ann", "--role", "agent", stdin="correct horse battery\n")
    assert created.returncode == 0, created.stderr
    token = run("create-token", "ann")
    assert token.returncode == 0
    assert token.stdout.strip().splitlines()[-1].startswith("lsn_")
    provider = run("create-provider", "Acme")  # CONTRACT §1: the name alone
    assert provider.returncode == 0
    assert "username:" in provider.stdout and "password:" in provider.stdout
    again = run("deploy", str(ROOT / "processes" / "liaison_closure.bpmn"))
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_demo_is_idempotent_and_prints_logins(run):
    first = run("demo")
    second = run("demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert "admin /" in first.stdout and "Bearer lsn_" in first.stdout
    assert first.stdout == second.stdout


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_a_port_out_of_range_is_a_usage_error(run, port):
    result = run("serve", "--port", port)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: liaison serve")
    assert "port number 1-65535" in result.stderr.strip().splitlines()[-1]


def test_a_bad_liaison_port_is_one_line(run):
    result = subprocess.run(liaison("init-db"), capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={**os.environ, "LIAISON_PORT": "eighty"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("liaison: error: LIAISON_PORT must be a port number "
                                     "1-65535, got 'eighty'")


def test_serve_port_is_the_wsdl_address_unless_public_url_is_set(tmp_path):
    import urllib.request

    from tests.conftest import free_port
    from tests.support import wait_for
    port = free_port()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "inst"),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'inst' / 'cli.db'}",
           "LIAISON_WORKERS_INLINE": "0"}
    for name in ("LIAISON_PUBLIC_URL", "LIAISON_PORT"):
        env.pop(name, None)
    subprocess.run(liaison("init-db"), env=env, cwd=ROOT, check=True, capture_output=True)
    server = subprocess.Popen(liaison("serve", "--port", str(port)), env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/Workflow/WebService/WorkflowService.asmx?wsdl"

    def wsdl():
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            return None
    try:
        text = wait_for(wsdl, timeout=60, interval=0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f'location="http://127.0.0.1:{port}/Workflow/WebService/WorkflowService.asmx"' in text


def test_a_misspelt_workers_inline_is_refused_not_read_as_off(run):
    result = subprocess.run(liaison("init-db"), capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={**os.environ, "LIAISON_WORKERS_INLINE": "ture"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("liaison: error: LIAISON_WORKERS_INLINE must be 1 or 0, "
                                     "got 'ture'")


@pytest.mark.parametrize("command", [("serve", "--port", "1"), ("worker",),
                                     ("smtp", "--listen", "127.0.0.1:1")])
def test_servers_refuse_a_database_init_db_has_not_prepared(run, command):
    result = run(*command)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "liaison: error: the database (LIAISON_DATABASE_URL) is not initialised or not at this "
        "version's schema: run `liaison init-db` first")
