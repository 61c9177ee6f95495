"""The simulated ConnectWise's data: tables of records with ids and `_info`, seeded like a
fresh ConnectWise, optionally kept in a JSON file across restarts.

Extending it (provider-opened tickets, configurations, callbacks…) means adding a table to
SEED or writing records with `insert`; `webservice.psa_simulator.app` exposes them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


API_MEMBER = "liaison-api"  # the member our API keys belong to (enteredBy, createdBy)
TECHNICIAN = "dana.noc"  # the provider's own people, who open tickets and add notes


def _statuses(board_id: int) -> list[dict]:
    names = [("New", False, True), ("In Progress", False, False), ("Info Needed", False, False),
             ("Approval Required", False, False), ("Work completed", False, False),
             ("Closed", True, False), ("Closed - No Resolution", True, False)]
    return [{"name": name, "board": {"id": board_id}, "sortOrder": order, "displayOnBoard": True,
             "inactive": False, "closedStatus": closed, "defaultFlag": default,
             # ConnectWise marks a status resolved through its escalation status
             "escalationStatus": "Resolved" if name == "Work completed" else "NotResponded"}
            for order, (name, closed, default) in enumerate(names, start=1)]


def _types(board_id: int) -> list[dict]:
    return [{"name": name, "board": {"id": board_id}, "category": "Reactive",
             "inactiveFlag": False, "defaultFlag": name == "Incident"}
            for name in ("Incident", "Service Request", "Problem")]


SEED = {
    "boards": [{"name": "Managed NOC", "inactiveFlag": False, "projectFlag": False},
               {"name": "Help Desk", "inactiveFlag": False, "projectFlag": False}],
    "statuses": _statuses(1) + _statuses(2),
    "types": _types(1) + _types(2),
    "priorities": [{"name": "Priority 1 - Emergency Response", "sortOrder": 1, "color": "red"},
                   {"name": "Priority 2 - Quick Response", "sortOrder": 2, "color": "orange"},
                   {"name": "Priority 3 - Normal Response", "sortOrder": 3, "color": "green",
                    "defaultFlag": True},
                   {"name": "Priority 4 - Schedule Maintenance", "sortOrder": 4,
                    "color": "blue"}],
    "companies": [{"identifier": "LiaisonMSP", "name": "Liaison MSP (our account)"},
                  {"identifier": "ACMERetail", "name": "ACME Retail"},
                  {"identifier": "NorthwindLtd", "name": "Northwind Ltd"}],
    "contacts": [{"firstName": "Dana", "lastName": "Noc", "company": {"id": 1}},
                 {"firstName": "Alex", "lastName": "Buyer", "company": {"id": 2}},
                 {"firstName": "Sam", "lastName": "Northwind", "company": {"id": 3}}],
    "catalog": [{"identifier": "MNOC-ROUTER", "description": "Managed router monitoring"},
                {"identifier": "MNOC-SERVER", "description": "Managed server monitoring"},
                {"identifier": "MNOC-FIREWALL", "description": "Managed firewall"},
                {"identifier": "BACKUP-SEAT", "description": "Cloud backup seat"}],
    "agreements": [{"name": "ACME Managed Services", "company": {"id": 2},
                    "type": {"name": "Managed Services"}, "cancelledFlag": False},
                   {"name": "Northwind Monitoring", "company": {"id": 3},
                    "type": {"name": "Managed Services"}, "cancelledFlag": False}],
    # devices (configurations) of the companies, for the two-way link manager
    "configurations": [
        {"name": "ACME-RTR-1", "serialNumber": "FTX1840A1B2", "modelNumber": "ISR4331",
         "manufacturer": {"name": "Cisco"}, "type": {"name": "Router"}, "company": {"id": 2},
         "status": {"name": "Active"}},
        {"name": "ACME-FW-1", "serialNumber": "FGT60F0001", "manufacturer": {"name": "Fortinet"},
         "type": {"name": "Firewall"}, "company": {"id": 2}, "status": {"name": "Active"}},
        {"name": "NW-NAS", "manufacturer": {"name": "Synology"}, "type": {"name": "Storage"},
         "company": {"id": 3}, "status": {"name": "Active"}}],
}


class State:
    """Tables of records (dicts with `id` and `_info`); every access holds one lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.path = path
        self.tables: dict[str, dict[int, dict]] = {}
        self.next_ids: dict[str, int] = {}
        self.log: deque[dict] = deque(maxlen=500)
        self.member = API_MEMBER  # who is making changes now (see acting_as)
        if path is not None and path.is_file():
            self._load(path)
        else:
            for table, records in SEED.items():
                for record in records:
                    self.insert(table, copy.deepcopy(record), save=False)

    def table(self, name: str) -> dict[int, dict]:
        return self.tables.setdefault(name, {})

    def insert(self, table: str, record: dict, save: bool = True) -> dict:
        with self.lock:
            record_id = self.next_ids.get(table, 1)
            self.next_ids[table] = record_id + 1
            stamp = now_iso()
            record = {"id": record_id, **record,
                      "_info": {"lastUpdated": stamp, "dateEntered": stamp,
                                "enteredBy": self.member, "updatedBy": self.member}}
            self.table(table)[record_id] = record
            if save:
                self.save()
            return record

    def get(self, table: str, record_id: int) -> dict | None:
        with self.lock:
            return self.table(table).get(record_id)

    def touch(self, record: dict) -> None:
        record["_info"]["lastUpdated"] = now_iso()
        record["_info"]["updatedBy"] = self.member
        self.save()

    @contextmanager
    def acting_as(self, member: str):
        """Changes made inside are the provider's own people's, not our API member's."""
        with self.lock:
            before, self.member = self.member, member
            try:
                yield
            finally:
                self.member = before

    def rows(self, table: str) -> list[dict]:
        with self.lock:
            return list(self.table(table).values())

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            data = {"next_ids": self.next_ids,
                    "tables": {name: list(rows.values()) for name, rows in self.tables.items()}}
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            temporary.replace(self.path)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.next_ids = {k: int(v) for k, v in data["next_ids"].items()}
        self.tables = {name: {int(r["id"]): r for r in rows}
                       for name, rows in data["tables"].items()}

    def snapshot(self) -> dict:
        """Everything, for a look (GET …/_sim/state)."""
        with self.lock:
            return {name: list(rows.values()) for name, rows in sorted(self.tables.items())}
