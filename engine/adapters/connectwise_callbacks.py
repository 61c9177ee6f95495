"""ConnectWise's `/system/callbacks` for the two-way link: liaison's callback URL is
registered when a provider's inbound is enabled and removed when it is switched off. Both are
idempotent (the URL is looked up first), so a retried or replayed delivery never registers
twice. Callbacks are self-suppressed: our own API member's changes are not called back."""

from __future__ import annotations

from engine.adapters.connectwise_client import quote

CALLBACK_OPERATIONS = ("register_callback", "unregister_callback")


def _registered(client, url: str) -> list[dict]:
    found = client.get_all("/system/callbacks", conditions=f"url={quote(url)}", limit=50)
    return [c for c in found if c.get("url") == url]  # older servers ignore some conditions


def run_callback_operation(client, message: dict) -> dict:
    url = message["url"]
    existing = _registered(client, url)
    if message["operation"] == "register_callback":
        if existing:
            return {"callback_id": existing[0]["id"], "adopted": True}
        record = client.post("/system/callbacks", {
            "url": url, "objectId": message.get("object_id", 1), "type": "ticket",
            "level": "owner", "inactiveFlag": False, "isSelfSuppressedFlag": True})
        return {"callback_id": (record or {}).get("id"), "adopted": False}
    for callback in existing:
        client.request("DELETE", f"/system/callbacks/{int(callback['id'])}")
    return {"removed": len(existing)}
