"""What the poller makes of ConnectWise's documented ticket and note bodies (no I/O): a
provider-opened ticket, the changes of a known one, our own notes and close left out."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from engine.services.psa_changes import Seen, opened_item, our_task_id, ticket_changes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "connectwise_inbound"
TICKET = json.loads((FIXTURES / "ticket_opened_by_provider.json").read_text())
NOTES = json.loads((FIXTURES / "notes.json").read_text())
OURS = "LiaisonAPI"
CONFIGURATION = {"id": 77, "name": "ACME-FW-1", "serialNumber": "FGT60F0001",
                 "manufacturer": {"id": 3, "name": "Fortinet"}, "type": {"id": 4,
                                                                          "name": "Firewall"}}


def test_a_provider_opened_ticket_becomes_a_new_ticket_item():
    item = opened_item(TICKET, NOTES[:1], [CONFIGURATION])
    assert (item["ticket_ref"], item["change_key"], item["kind"]) == ("4711", "opened",
                                                                      "new_ticket")
    payload = item["payload"]
    assert payload["title"] == "Firewall CPU at 95%"
    assert payload["description"] == "CPU alarm raised by monitoring on ACME-FW-1."
    assert (payload["site"], payload["site_name"]) == ("250", "ACME Retail")
    assert payload["device"] == "77"
    assert payload["device_details"] == {"name": "ACME-FW-1", "serial": "FGT60F0001",
                                         "manufacturer": "Fortinet", "type": "Firewall"}
    assert payload["created_at"] == "2026-12-01T09:12:55Z"
    assert our_task_id(TICKET) is None


def test_first_sight_is_the_baseline_and_later_changes_are_items():
    first = ticket_changes(TICKET, NOTES[:1], None, OURS, {"work completed"})
    assert first.items == [] and first.seen == Seen("New", 90001, False)
    later = copy.deepcopy(TICKET)
    later["status"] = {"id": 5, "name": "Work completed"}
    later["_info"]["lastUpdated"] = "2026-12-01T09:14:07Z"
    changes = ticket_changes(later, NOTES[1:], first.seen, OURS, {"work completed"})
    keys = [i["change_key"] for i in changes.items]
    assert keys == ["note:90003", "status:Work completed:2026-12-01T09:14:07Z"]  # 90002 is ours
    status = changes.items[-1]["payload"]
    assert status["resolved"] is True and status["resolution"] == "Rule 14 disabled; CPU back to 20%."
    assert changes.seen == Seen("Work completed", 90003, False)


def test_our_own_close_is_not_taken_back_but_theirs_is():
    seen = Seen("In Progress", 90003, False)
    closed = copy.deepcopy(TICKET)
    closed["status"], closed["closedFlag"] = {"id": 6, "name": "Closed"}, True
    closed["_info"]["updatedBy"] = OURS
    assert ticket_changes(closed, [], seen, OURS, set()).items == []
    closed["_info"]["updatedBy"] = "dnoc"
    [item] = ticket_changes(closed, [], seen, OURS, set()).items
    assert item["kind"] == "status" and item["payload"]["closed"] is True


def test_a_ticket_we_created_names_its_task():
    ours = {**TICKET, "externalXRef": "liaison:42"}
    assert our_task_id(ours) == 42
    assert our_task_id({**TICKET, "externalXRef": "liaison:x"}) is None
    assert our_task_id({**TICKET, "externalXRef": "CARRIER-7"}) is None
