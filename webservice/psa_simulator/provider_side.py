"""The simulated ConnectWise's other side: what the provider's own people do (open a ticket,
add a note, set a status — as member `dana.noc`, not our API member), the tickets'
configurations, `/system/callbacks`, and the callbacks it then POSTs (ConnectWise's payload:
`Action`, `Type`, `ID`, `MemberId`, `Entity` as a JSON string). A callback is fire-and-forget,
like ConnectWise's: the receiver must not trust it and fetches the ticket.

`POST …/_sim/provider/tickets` `{"summary", "company", "configuration"?, "description"?}`,
`POST …/_sim/provider/tickets/<id>/notes` `{"text", "resolution"?}` and
`POST …/_sim/provider/tickets/<id>/status` `{"status"}` do the same over HTTP (demos).
"""

from __future__ import annotations

import json
import logging
import re
import threading

import requests

from webservice.psa_simulator import records
from webservice.psa_simulator.records import ApiFailure
from webservice.psa_simulator.state import TECHNICIAN, State

log = logging.getLogger(__name__)
SIM = re.compile(r"/_sim/provider/tickets(?:/(\d+)/(notes|status))?/?$")


def _notify(state: State, ticket: dict, action: str) -> None:
    """POSTs a callback to every active ticket callback, each in a thread of its own."""
    body = {"MessageId": f"sim-{ticket['id']}-{ticket['_info']['lastUpdated']}",
            "Action": action, "Type": "ticket", "ID": ticket["id"], "MemberId": 0,
            "Entity": json.dumps(ticket), "Metadata": {"key_url": ""}}
    for callback in state.rows("callbacks"):
        if callback.get("inactiveFlag") or str(callback.get("type")).lower() != "ticket":
            continue
        url = f"{str(callback['url']).rstrip('/')}/{ticket['id']}"
        threading.Thread(target=_post, args=(url, body), daemon=True).start()


def _post(url: str, body: dict) -> None:
    try:
        requests.post(url, json=body, timeout=5)
    except requests.RequestException as exc:
        log.info("simulated callback to %s failed: %s", url, exc)


def open_ticket(state: State, summary: str, company: str, configuration: int | None = None,
                description: str | None = None, **fields) -> dict:
    body = {"summary": summary, "company": {"identifier": company}, **fields}
    if description:
        body["initialDescription"] = description
    with state.acting_as(TECHNICIAN):
        ticket = records.create_ticket(state, body)
        if configuration is not None:
            if state.get("configurations", int(configuration)) is None:
                raise records.not_found(f"Configuration {configuration}")
            state.insert("ticket_configurations", {"ticketId": ticket["id"],
                                                   "configurationId": int(configuration)})
    _notify(state, ticket, "added")
    return ticket


def add_note(state: State, ticket_id: int, text: str, resolution: bool = False) -> dict:
    with state.acting_as(TECHNICIAN):
        note = records.add_note(state, ticket_id, {
            "text": text, "detailDescriptionFlag": not resolution, "resolutionFlag": resolution})
        ticket = state.get("tickets", ticket_id)
        state.touch(ticket)
    _notify(state, ticket, "updated")
    return note


def set_status(state: State, ticket_id: int, status: str) -> dict:
    with state.acting_as(TECHNICIAN):
        ticket = records.patch_ticket(state, ticket_id,
                                      [{"op": "replace", "path": "status/name", "value": status}])
    _notify(state, ticket, "updated")
    return ticket


def ticket_configurations(state: State, ticket_id: int) -> list[dict]:
    if state.get("tickets", ticket_id) is None:
        raise records.not_found(f"Ticket {ticket_id}")
    ids = [row["configurationId"] for row in state.rows("ticket_configurations")
           if row["ticketId"] == ticket_id]
    return [state.get("configurations", i) for i in ids if state.get("configurations", i)]


def add_callback(state: State, body: dict) -> dict:
    url = str(body.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise records.invalid("callback", [records.field_error("callback", "url",
                                                               "The url field is required.")])
    return state.insert("callbacks", {
        "url": url, "objectId": body.get("objectId", 0), "type": body.get("type", "ticket"),
        "level": body.get("level", "owner"), "memberId": body.get("memberId"),
        "inactiveFlag": bool(body.get("inactiveFlag")),
        "isSelfSuppressedFlag": bool(body.get("isSelfSuppressedFlag"))})


def delete_callback(state: State, record_id: int) -> None:
    with state.lock:
        if state.table("callbacks").pop(record_id, None) is None:
            raise records.not_found(f"Callback {record_id}")
        state.save()


def sim_request(state: State, method: str, path: str, body: dict) -> tuple[int, dict] | None:
    """The `_sim/provider/…` HTTP endpoints -> (status, body), or None for other paths."""
    match = SIM.search(path)
    if match is None or method != "POST":
        return None
    ticket_id, what = match.group(1), match.group(2)
    try:
        if ticket_id is None:
            return 201, open_ticket(state, str(body.get("summary") or ""),
                                    str(body.get("company") or ""), body.get("configuration"),
                                    body.get("description"))
        if what == "notes":
            return 201, add_note(state, int(ticket_id), str(body.get("text") or ""),
                                 bool(body.get("resolution")))
        return 200, set_status(state, int(ticket_id), str(body.get("status") or ""))
    except ApiFailure as exc:
        return exc.status, exc.body
