"""The PSA poller, reconciliation and the sites download against a small fake reader in
ConnectWise's shapes (SQLite and PostgreSQL): provider-opened tickets, notes and statuses on
linked tickets, our own changes left out, drift repaired at night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.services import (
    inbound,
    inbound_queue,
    inbound_settings,
    links,
    psa_inbound,
    queries,
    tasks,
)
from tests.conftest import seed

OURS = "liaison-api"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeReader:
    """A PSA's tickets, notes and configurations in memory (ConnectWise shapes)."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict] = {}
        self.notes_of: dict[str, list[dict]] = {}
        self.configs_of: dict[str, list[dict]] = {}
        self.clock = datetime.now(UTC) + timedelta(minutes=1)
        self.asked_since: list[datetime] = []

    def tick(self) -> str:
        self.clock += timedelta(seconds=5)
        return stamp(self.clock)

    def add_ticket(self, ticket_id: int, summary: str, by: str = "dana", xref=None,
                   company=None) -> dict:
        at = self.tick()
        ticket = {"id": ticket_id, "summary": summary, "externalXRef": xref,
                  "status": {"name": "New"}, "closedFlag": False,
                  "company": company or {"id": 2, "identifier": "ACMERetail",
                                         "name": "ACME Retail"},
                  "_info": {"lastUpdated": at, "dateEntered": at, "enteredBy": by,
                            "updatedBy": by}}
        self.tickets[str(ticket_id)] = ticket
        self.notes_of[str(ticket_id)] = []
        return ticket

    def add_note(self, ticket_id: int, text: str, by: str = "dana", **flags) -> None:
        ids = [n["id"] for notes in self.notes_of.values() for n in notes]
        note = {"id": max(ids, default=0) + 1, "ticketId": ticket_id, "text": text,
                "createdBy": by, "detailDescriptionFlag": not flags, **flags}
        self.notes_of[str(ticket_id)].append(note)
        self._touch(ticket_id, by)

    def set_status(self, ticket_id: int, name: str, by: str = "dana", closed=False,
                   touch=True) -> None:
        ticket = self.tickets[str(ticket_id)]
        ticket["status"], ticket["closedFlag"] = {"name": name}, closed
        if touch:
            self._touch(ticket_id, by)

    def _touch(self, ticket_id: int, by: str) -> None:
        info = self.tickets[str(ticket_id)]["_info"]
        info["lastUpdated"], info["updatedBy"] = self.tick(), by

    # -- the PsaReader protocol
    def changed_tickets(self, since):
        self.asked_since.append(since)
        return sorted((t for t in self.tickets.values()
                       if datetime.fromisoformat(t["_info"]["lastUpdated"].replace("Z", "+00:00"))
                       > since), key=lambda t: t["_info"]["lastUpdated"])

    def ticket(self, ticket_id):
        return self.tickets.get(str(ticket_id))

    def notes(self, ticket_id, after=0):
        return [n for n in self.notes_of.get(str(ticket_id), []) if n["id"] > after]

    def ticket_configurations(self, ticket_id):
        return self.configs_of.get(str(ticket_id), [])

    def resolved_statuses(self):
        return {"work completed", "resolved by vendor"}

    def companies(self):
        return [{"id": 2, "identifier": "ACMERetail", "name": "ACME Retail"},
                {"id": 3, "identifier": "NorthwindLtd", "name": "Northwind Ltd"}]

    def configurations(self):
        return [{"id": 5, "name": "RTR-1", "serialNumber": "FTX-1",
                 "manufacturer": {"name": "Cisco"}, "type": {"name": "Router"},
                 "company": {"id": 2}, "modelNumber": "ISR4321"},
                {"id": 6, "name": "NAS", "company": {"id": 3}}]  # no serial


@pytest.fixture
def psa(any_core):
    data = seed(any_core)
    reader = FakeReader()
    any_core.psa_readers = {"email": lambda provider_id: reader}  # the seeded provider's channel
    return any_core, data, reader


def poll(core):
    return psa_inbound.poll_job(core)


def task_of(core, reference) -> dict:
    [task] = [t for t in core.run(queries.list_tasks, None, None, reference)["items"]
              if t["external_reference"] == reference]
    return core.run(queries.task_page, task["id"])


@pytest.mark.postgres
def test_a_provider_opened_ticket_is_kept_until_enabled_then_follows_its_changes(psa):
    core, data, reader = psa
    provider_id = data["provider"]["id"]
    reader.add_ticket(101, "Router flapping")
    reader.add_note(101, "Seen by monitoring at 03:12")
    reader.configs_of["101"] = [{"id": 5, "name": "RTR-1", "serialNumber": "FTX-1",
                                 "manufacturer": {"name": "Cisco"}}]
    poll(core)
    assert core.run(inbound_settings.inbound_status, provider_id)["inbound_queued"] == 1
    reader.add_note(101, "Engineer dispatched")  # while inbound is off: kept too
    poll(core)
    core.run(inbound_settings.set_inbound, provider_id, {"inbound_group": "Desk",
                                                        "inbound_enabled": True})
    inbound_queue.drain_job(core)
    page = task_of(core, "101")
    assert page["task"]["group"] == "Desk"
    assert page["task"]["customer"] == "[Carrier AUTO CREATED] ACME Retail"
    assert "Seen by monitoring" in page["task"]["description"]
    assert "Device: RTR-1 · Serial: FTX-1 · Manufacturer: Cisco" in page["task"]["description"]
    assert [(e["request_type"], e["direction"]) for e in page["exchanges"]] == [
        ("New Ticket", "In"), ("Update", "In")]
    assert [e["channel"] for e in page["exchanges"]] == ["connectwise", "connectwise"]

    reader.set_status(101, "Approval Required")
    poll(core)
    page = task_of(core, "101")
    assert page["exchanges"][-1]["request_type"] == "Reassigned"
    assert any("Approval Required" in n["text"] for n in page["notes"])
    assert page["task"]["solution"] is None
    summary = poll(core)  # nothing new: nothing queued twice
    assert summary[str(provider_id)]["queued"] == 0
    assert reader.asked_since[-1] > reader.asked_since[0]  # lastUpdated > [last seen]


@pytest.mark.postgres
def test_a_note_we_wrote_is_not_taken_back_before_we_know_our_member(psa):
    core, data, reader = psa
    provider_id = data["provider"]["id"]
    core.run(inbound_settings.set_inbound, provider_id, {"inbound_group": "Desk",
                                                        "inbound_enabled": True})
    reader.add_ticket(303, "Printer offline")
    poll(core)
    inbound_queue.drain_job(core)
    task_id = task_of(core, "303")["task"]["id"]
    # what the channel records when it added our note there (its id comes back)
    reader.add_note(303, "We rebooted the print server", by="api-member-7")
    written = reader.notes_of["303"][-1]["id"]
    core.run(lambda uow: (uow.repo.insert_exchange(
        task_id=task_id, provider_id=provider_id, request_type="Update", direction="Out",
        channel="connectwise", status="delivered", attempts=1, payload={},
        result={"ticket_id": 303, "note_id": written}), uow.commit()))
    reader.add_note(303, "Still offline here", by="dana")
    poll(core)
    inbound_queue.drain_job(core)
    texts = [n["text"] for n in task_of(core, "303")["notes"]]
    assert "Still offline here" in texts
    assert "We rebooted the print server" not in texts


@pytest.mark.postgres
def test_changes_on_our_ticket_come_back_and_our_own_are_left_out(psa):
    core, data, reader = psa
    task = core.run(tasks.create_task, data["ticket"]["id"], "Line down", "Leeds",
                    group="Carrier Group")
    core.run(inbound.acknowledge_external, task["id"], "202")
    reader.add_ticket(202, "Line down", by=OURS, xref=f"liaison:{task['id']}")
    reader.add_note(202, "Leeds", by=OURS)  # our initialDescription
    poll(core)
    reader.add_note(202, "Carrier engineer booked for 14:00")
    reader.add_note(202, "Update from our side", by=OURS)
    reader.set_status(202, "Work completed")
    reader.add_note(202, "Replaced the line card", resolutionFlag=True)
    poll(core)  # inbound off: changes on tickets we opened are held as well
    core.run(inbound_settings.set_inbound, data["provider"]["id"],
             {"inbound_group": "Desk", "inbound_enabled": True})
    inbound_queue.drain_job(core)
    page = core.run(queries.task_page, task["id"])
    inbound_kinds = [e["request_type"] for e in page["exchanges"] if e["direction"] == "In"]
    assert inbound_kinds == ["Acknowledgement", "Update", "Update", "Reassigned"]
    assert page["task"]["solution"] == "Replaced the line card"
    texts = [n["text"] for n in page["notes"]]
    assert "Update from our side" not in texts
    # our close there is not taken back as the provider's
    core.run(tasks.close_task, task["id"], "Done")
    reader.set_status(202, "Closed", by=OURS, closed=True)
    assert poll(core)[str(data["provider"]["id"])]["queued"] == 0


@pytest.mark.postgres
def test_reconciliation_repairs_what_polling_missed(psa):
    core, data, reader = psa
    provider_id = data["provider"]["id"]
    core.run(inbound_settings.set_inbound, provider_id, {"inbound_group": "Desk",
                                                        "inbound_enabled": True})
    reader.add_ticket(303, "Backup failed")
    reader.add_ticket(304, "Disk warning")  # the newest: the poller's cursor moves past 303
    poll(core)
    # changed without moving lastUpdated past the cursor (a change polling cannot see)
    reader.set_status(303, "Resolved by vendor", touch=False)
    reader.notes_of["303"].append({"id": 900, "text": "Re-ran the job", "createdBy": "dana",
                                   "detailDescriptionFlag": False, "resolutionFlag": True})
    assert poll(core)[str(provider_id)]["queued"] == 0
    report = psa_inbound.reconcile_job(core)[str(provider_id)]
    assert report["checked"] == 2 and report["repaired"] == 2
    assert report["drift"] == [{"ticket": "303", "changes": ["note:900",
                                                             f"status:Resolved by vendor:"
                                                             f"{reader.tickets['303']['_info']['lastUpdated']}"]}]
    page = task_of(core, "303")
    assert page["task"]["solution"] == "Re-ran the job"
    assert psa_inbound.reconcile_job(core)[str(provider_id)]["repaired"] == 0


def test_sites_and_devices_are_downloaded_and_linkable(psa):
    core, data, reader = psa
    provider_id = data["provider"]["id"]
    assert psa_inbound.refresh_sites(core, provider_id) == {"sites": 2, "devices": 2}
    sites = core.run(links.list_sites, provider_id)
    assert [s["name"] for s in sites] == ["ACME Retail", "Northwind Ltd"]
    assert sites[0]["suggestions"][0]["name"] == "ACME"  # the seed's customer
    core.run(links.link_site, provider_id, "2", customer_id=sites[0]["suggestions"][0]["id"])
    created = core.run(links.link_device, provider_id, "5", create=True)
    assert created["asset"]["name"] == "RTR-1"
    nas = next(d for d in core.run(links.list_devices, provider_id) if d["name"] == "NAS")
    assert nas["serial"] is None and nas["asset"] is None  # a device without serial is fine
    assert psa_inbound.refresh_sites(core, provider_id) == {"sites": 2, "devices": 2}  # again
