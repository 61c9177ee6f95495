"""The customer pages as a signed-in person uses them: list, search, create, edit, assets,
merge; roles and CSRF (Flask test client, real database)."""

from __future__ import annotations

import re

from engine.services import customers
from tests.integration.test_web_pages import as_user, people, text_of, web  # noqa: F401

ROW = re.compile(r'<tr class="customer">\s*<td><a href="/customers/(\d+)">([^<]+)</a>')


def listed(page) -> list[str]:
    return [name for _, name in ROW.findall(text_of(page))]


def customer_id(core, name: str) -> int:
    return next(c["id"] for c in core.run(customers.list_customers, name) if c["name"] == name)


def test_agent_lists_searches_and_creates_customers(web, people, core):  # noqa: F811
    core.run(customers.ensure_own_customer)
    as_user(web, "alice")
    page = web.get("/customers")
    assert page.status_code == 200 and 'href="/customers"' in text_of(page)  # in the nav
    assert listed(page) == ["Own business", "ACME"]  # our own first; ACME from the seed ticket
    assert "our own business" in text_of(page)

    created = web.post("/customers", {"name": "  Initech ", "notes": "Leeds & York"},
                       page="/customers")
    new_id = customer_id(core, "Initech")
    assert created.status_code == 302 and created.location == f"/customers/{new_id}"
    shown = text_of(web.get(created.location))
    assert "Customer Initech created." in shown and "Leeds &amp; York" in shown

    assert listed(web.get("/customers?q=NITE")) == ["Initech"]
    assert "No customers match" in text_of(web.get("/customers?q=nobody"))


def test_a_duplicate_or_blank_name_comes_back_with_the_reason(web, people, core):  # noqa: F811
    as_user(web, "alice")
    duplicate = web.post("/customers", {"name": "acme"}, page="/customers")
    assert duplicate.status_code == 302 and duplicate.location == "/customers"
    assert "already exists" in text_of(web.get("/customers"))
    web.post("/customers", {"name": "   "}, page="/customers")
    assert "name:" in text_of(web.get("/customers"))
    assert listed(web.get("/customers")) == ["ACME"]


def test_agent_edits_a_customer_and_its_assets(web, people, core):  # noqa: F811
    acme = customer_id(core, "ACME")
    page = f"/customers/{acme}"
    as_user(web, "alice")
    web.post(page, {"name": "ACME Retail", "notes": "Key account"})
    assert core.run(customers.get_customer, acme)["name"] == "ACME Retail"

    web.post(f"{page}/assets", {"name": "LDS-RTR-1", "serial": "FTX1", "manufacturer": "Cisco",
                                "type": "router", "notes": ""}, page=page)
    [asset] = core.run(customers.list_assets, acme)
    assert (asset["name"], asset["serial"], asset["type"]) == ("LDS-RTR-1", "FTX1", "router")
    shown = text_of(web.get(page))
    assert 'id="asset-' in shown and "FTX1" in shown and "Assets (1)" in shown

    # an emptied field is cleared, not kept
    web.post(f"{page}/assets/{asset['id']}", {"name": "LDS-RTR-1", "serial": "",
                                              "manufacturer": "Cisco", "type": "router",
                                              "notes": "rack 2"}, page=page)
    [edited] = core.run(customers.list_assets, acme)
    assert (edited["serial"], edited["notes"]) == (None, "rack 2")

    refused = web.post(f"{page}/assets/{asset['id']}/delete", page=page)
    assert refused.status_code == 403  # agents may not delete assets
    assert "Delete</button>" not in text_of(web.get(page))
    assert len(core.run(customers.list_assets, acme)) == 1


def test_integration_manager_deletes_assets_and_merges_customers(web, people, core):  # noqa: F811
    acme = customer_id(core, "ACME")
    auto = core.run(customers.create_customer, "[Carrier AUTO CREATED] ACME Leeds")["id"]
    asset = core.run(customers.create_asset, auto, "LDS-0042")
    spare = core.run(customers.create_asset, acme, "Spare")
    as_user(web, "ivan")
    page = f"/customers/{auto}"
    assert "Merge into another customer" in text_of(web.get(page))
    merged = web.post(f"{page}/merge", {"into": str(acme)}, page=page)
    assert merged.status_code == 302 and merged.location == f"/customers/{acme}"
    after = text_of(web.get(merged.location))
    assert "1 asset(s)" in after and "LDS-0042" in after
    assert web.get(page).status_code == 404

    web.post(f"/customers/{acme}/assets/{spare['id']}/delete", page=f"/customers/{acme}")
    assert [a["id"] for a in core.run(customers.list_assets, acme)] == [asset["id"]]


def test_customer_pages_need_a_role_that_reads_them_and_a_csrf_token(web, people, core):  # noqa: F811
    acme = customer_id(core, "ACME")
    assert web.get("/customers").status_code == 302  # sign in first
    as_user(web, "dora")  # a designer
    assert web.get("/customers").status_code == 403
    assert 'href="/customers"' not in text_of(web.get("/process-models"))
    web.post("/logout", page="/process-models")
    as_user(web, "alice")
    sneaky = web.client.post(f"/customers/{acme}", data={"name": "Hacked", "notes": ""})
    assert sneaky.status_code == 400 and "CSRF" in text_of(sneaky)
    assert core.run(customers.get_customer, acme)["name"] == "ACME"
    assert web.get("/customers/999").status_code == 404


def test_names_are_escaped(web, people, core):  # noqa: F811
    core.run(customers.create_customer, "<script>alert(1)</script>")
    as_user(web, "alice")
    page = text_of(web.get("/customers"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
