"""The ConnectWise private key is write-only and stored sealed: it never appears in the
database as plain text, in a response, a page, a log line, an exchange, an outbox message or
an error; rotating LIAISON_SECRET_KEY keeps it readable through `reencrypt-secrets`."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
from dataclasses import replace

import pytest
from sqlalchemy import select

from engine.adapters import orm
from engine.adapters.connectwise_client import Connection
from engine.domain import sealed
from engine.services import admin, psa_connection, psa_lookups, psa_settings, tasks
from engine.worker import Worker
from tests.conftest import free_port
from tests.support import ROOT, liaison
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator

KEY = "Sup3r-Secret-Private-Key-4711"
MEMBER = {"company_id": "acme", "public_key": "pub-1", "private_key": KEY, "client_id": "cid-1"}
# the key also travels base64-encoded inside the Basic header: that must not leak either
ENCODED = base64.b64encode(f"acme+pub-1:{KEY}".encode()).decode()


def leaks(blob: str) -> bool:
    return KEY in blob or ENCODED in blob


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


def everything_stored(core) -> str:
    with core.db.connect() as connection:
        return "\n".join(str(row) for table in orm.Base.metadata.sorted_tables
                         for row in connection.execute(select(table)))


def test_the_key_is_sealed_and_never_shown(core, client, admin_token, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {admin_token}"}
    created = client.post("/api/v1/providers", headers=auth, json={
        "name": "NOC", "channel": "connectwise",
        "connection": {"url": simulator.url, **MEMBER}})
    provider_id = created.get_json()["id"]
    psa_lookups.refresh(core, provider_id)
    core.run(psa_settings.put_settings, provider_id, {"board": "Managed NOC",
                                                      "company": "ACMERetail"})
    core.run(admin.create_group, "Managed NOC", integrated=True, provider="NOC")
    ticket = core.run(tasks.create_ticket, "Leeds", "")
    task = core.run(tasks.create_task, ticket["id"], "Router", "", group="Managed NOC")
    Worker(core).run_once()
    # failures too: a rejected create, wrong keys, nobody listening
    simulator.simulator.fail("POST", r"/service/tickets$", 400)
    core.run(tasks.add_update, task["id"], "more", actor="agent")
    Worker(core).run_once()
    answers = [created.get_data(as_text=True)]
    for path in ("/providers", f"/providers/{provider_id}", f"/providers/{provider_id}/errors",
                 f"/tasks/{task['id']}/exchanges", "/exchanges", "/exchanges/1"):
        answers.append(client.get(f"/api/v1{path}", headers=auth).get_data(as_text=True))
    dead = f"http://127.0.0.1:{free_port()}/v4_6_release/apis/3.0"
    client.patch(f"/api/v1/providers/{provider_id}", headers=auth,
                 json={"connection": {"url": dead}})
    answers.append(client.post(f"/api/v1/providers/{provider_id}/test-connection",
                               headers=auth).get_data(as_text=True))
    assert core.run(lambda uow: uow.repo.psa_connection(provider_id).private_key_sealed)
    assert not leaks("\n".join(answers))
    assert not leaks(everything_stored(core))
    assert not leaks("\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records))


def test_bad_input_never_echoes_the_key(client, admin_token):
    auth = {"Authorization": f"Bearer {admin_token}"}
    answer = client.post("/api/v1/providers", headers=auth, json={
        "name": "NOC", "channel": "connectwise",
        "connection": {"url": "not a url", **{**MEMBER, "private_key": KEY + " with space"}}})
    assert answer.status_code == 422 and KEY not in answer.get_data(as_text=True)
    answer = client.post("/api/v1/providers", headers=auth, json={
        "name": "NOC", "channel": "connectwise",
        "connection": {"url": "https://cw.example.com/apis/3.0",
                       **{**MEMBER, "private_key": KEY + " with space"}}})
    assert answer.status_code == 422 and KEY not in answer.get_data(as_text=True)
    assert answer.get_json()["error"]["field"] == "connection.private_key"


def test_a_connection_does_not_print_its_key():
    assert KEY not in repr(Connection("https://x/apis/3.0", **MEMBER))


def test_a_changed_secret_key_is_reported_and_reencrypt_restores(core, simulator):
    provider = core.run(admin.create_provider, "NOC", "connectwise",
                        connection={"url": simulator.url, **MEMBER})
    old_key = core.settings.secret_key
    core.settings = replace(core.settings, secret_key="a-brand-new-secret-key")
    answer = psa_connection.check_connection(core, provider["id"])
    assert answer["ok"] is False and "reencrypt-secrets" in answer["error"]
    assert not leaks(answer["error"])
    assert core.run(psa_connection.reencrypt_secrets, old_key) == 1
    assert psa_connection.check_connection(core, provider["id"])["ok"] is True
    assert core.run(psa_connection.reencrypt_secrets, old_key) == 0  # a re-run is harmless


def test_sealing_is_authenticated():
    token = sealed.seal("key-one", KEY)
    assert KEY not in token and sealed.unseal("key-one", token) == KEY
    with pytest.raises(sealed.SealBroken) as caught:
        sealed.unseal("key-two", token)
    assert KEY not in caught.value.message
    assert sealed.reseal("key-one", "key-two", token) != token


def test_the_reencrypt_command(tmp_path):
    instance = tmp_path / "instance"
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(instance),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "LIAISON_SECRET_KEY": "first-secret-key"}

    def run(*args, **extra):
        return subprocess.run(liaison(*args), env={**env, **extra}, cwd=ROOT, text=True,
                              capture_output=True, timeout=120)

    assert run("init-db").returncode == 0
    from engine.config import Settings
    from engine.core import Core
    core = Core(Settings.from_env(env))
    core.run(admin.create_provider, "NOC", "connectwise",
             connection={"url": "https://cw.example.com/v4_6_release/apis/3.0", **MEMBER})
    core.close()
    missing = run("reencrypt-secrets", LIAISON_SECRET_KEY="second-secret-key")
    assert missing.returncode == 1 and "LIAISON_OLD_SECRET_KEY" in missing.stderr
    done = run("reencrypt-secrets", LIAISON_SECRET_KEY="second-secret-key",
               LIAISON_OLD_SECRET_KEY="first-secret-key")
    assert done.returncode == 0 and "1 provider secret(s) re-encrypted" in done.stdout
    core = Core(Settings.from_env({**env, "LIAISON_SECRET_KEY": "second-secret-key"}))
    try:
        connection = core.run(psa_connection.load_connection, 1)
        assert connection.private_key == KEY
    finally:
        core.close()
