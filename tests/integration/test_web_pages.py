"""The web pages as a signed-in person uses them (Flask test client, real database).

Sign-in and lock-out, CSRF, roles, the agent's inbox and task page, escaping, error pages.
"""

from __future__ import annotations

import re

import pytest

from engine.services import admin, inbound, tasks
from engine.services.accounts import set_group_members

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORDS = {"alice": "alice-password", "dora": "dora-password", "ivan": "ivan-password",
             "boss": "boss-password"}


class WebClient:
    """A test client that signs in and sends the CSRF token like a browser would."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def token(self, page: str) -> str:
        html = self.client.get(page).get_data(as_text=True)
        return CSRF.search(html).group(1)

    def post(self, path: str, data: dict | None = None, page: str | None = None, **kwargs):
        page = page or path
        form = {**(data or {}), "csrf_token": self.token(page)}
        headers = {"Referer": f"http://localhost{page}"}  # as a browser sends it
        return self.client.post(path, data=form, headers=headers, **kwargs)

    def login(self, name: str, password: str | None = None):
        return self.post("/login", {"name": name, "password": password or PASSWORDS[name]})


@pytest.fixture
def people(core, seeded):
    """An agent in the integrated and the local group, a designer, an integration manager,
    an admin, and a group the agent is not in."""
    for name, role in (("alice", "agent"), ("dora", "designer"), ("ivan", "integration_manager"),
                       ("boss", "admin")):
        core.run(admin.create_user, name, PASSWORDS[name], role)
    core.run(admin.create_group, "Other", integrated=False)
    for group in ("Carrier Group", "Desk"):
        core.run(set_group_members, group, ["alice"])
    return seeded


@pytest.fixture
def web(client):
    return WebClient(client)


def as_user(web: WebClient, name: str) -> WebClient:
    response = web.login(name)
    assert response.status_code == 302, response.get_data(as_text=True)
    return web


def new_task(core, ticket_id: int, title: str, group: str) -> int:
    return core.run(tasks.create_task, ticket_id, title, "details", group=group)["id"]


def text_of(response) -> str:
    return response.get_data(as_text=True)


# -- sign-in -----------------------------------------------------------------------------

def test_pages_ask_for_sign_in_and_return_to_the_page_after_it(web, people):
    response = web.get("/tasks")
    assert response.status_code == 302 and "/login?next=%2Ftasks" in response.location
    signed_in = web.post("/login", {"name": "alice", "password": "alice-password",
                                    "next": "/tasks?status=closed"}, page="/login")
    assert signed_in.location.endswith("/tasks?status=closed")


def test_next_pointing_elsewhere_is_ignored(web, people):
    response = web.post("/login", {"name": "alice", "password": "alice-password",
                                   "next": "https://evil.example/steal"})
    assert response.status_code == 302 and response.location == "/tasks"


def test_session_cookie_is_httponly_and_samesite(web, people):
    response = web.login("alice")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be dropped


def test_cookies_are_secure_when_served_over_https(core, people):
    from dataclasses import replace

    from app import create_app
    core.settings = replace(core.settings, public_url="https://liaison.example")
    web = WebClient(create_app(core=core).test_client())
    assert "Secure" in web.login("alice").headers["Set-Cookie"]


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(web, people):
    wrong_password = web.login("alice", "nope-nope")
    no_such_user = web.login("mallory", "nope-nope")
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert "invalid user name or password" in text_of(wrong_password)
    assert "invalid user name or password" in text_of(no_such_user)


def test_five_failures_lock_the_account_until_an_admin_unlocks_it(web, people):
    for _ in range(5):
        assert web.login("alice", "wrong-password").status_code == 401
    locked = web.login("alice")  # the right password no longer helps
    assert locked.status_code == 401 and "locked" in text_of(locked)
    as_user(web, "boss")
    assert "locked" in text_of(web.get("/users"))
    web.post("/users/alice/unlock", page="/users")
    web.post("/logout", page="/users")
    assert web.login("alice").status_code == 302


def test_logout_ends_the_session(web, people):
    as_user(web, "alice")
    web.post("/logout", page="/tasks")
    assert web.get("/tasks").status_code == 302


def test_post_without_csrf_token_is_refused(web, people):
    as_user(web, "alice")
    task_id = new_task(web.client.application.extensions["liaison"], people["ticket"]["id"],
                       "Desk job", "Desk")
    response = web.client.post(f"/tasks/{task_id}/updates", data={"text": "sneaky"})
    assert response.status_code == 400
    assert "CSRF" in text_of(response)
    assert "sneaky" not in text_of(web.get(f"/tasks/{task_id}"))


def test_rest_api_needs_no_csrf_token(web, people, admin_token):
    response = web.client.post("/api/v1/tickets", json={"title": "by API"},
                               headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 201


# -- roles --------------------------------------------------------------------------------

def test_agent_cannot_open_admin_pages(web, people):
    as_user(web, "alice")
    for path in ("/providers", "/groups", "/users", "/exchanges"):
        response = web.get(path)
        assert response.status_code == 403, path
        assert "Your role does not allow this page" in text_of(response)


def test_agent_sees_only_tasks_of_their_groups(core, web, people):
    mine = new_task(core, people["ticket"]["id"], "Desk printer", "Desk")
    other = new_task(core, people["ticket"]["id"], "Secret HR matter", "Other")
    as_user(web, "alice")
    inbox = text_of(web.get("/tasks"))
    assert "Desk printer" in inbox and "Secret HR matter" not in inbox
    assert web.get(f"/tasks/{mine}").status_code == 200
    hidden = web.get(f"/tasks/{other}")
    assert hidden.status_code == 404 and "Secret HR matter" not in text_of(hidden)
    assert web.post(f"/tasks/{other}/updates", {"text": "x"}, page="/tasks").status_code == 404


def test_inbox_filters_by_group_status_and_search_and_pages(core, web, people):
    for number in range(30):
        new_task(core, people["ticket"]["id"], f"Desk job {number:02d}", "Desk")
    closed = new_task(core, people["ticket"]["id"], "Old closed job", "Desk")
    core.run(tasks.close_task, closed, "done")
    as_user(web, "alice")
    first = text_of(web.get("/tasks?group=Desk"))
    assert "Desk job 29" in first and "Desk job 00" not in first and "page 1 of 2" in first
    assert "Desk job 00" in text_of(web.get("/tasks?group=Desk&page=2"))
    assert "Old closed job" in text_of(web.get("/tasks?status=closed"))
    assert "Old closed job" not in first
    searched = text_of(web.get("/tasks?q=job+07"))
    assert "Desk job 07" in searched and "Desk job 08" not in searched


def test_script_in_a_task_title_is_shown_escaped(core, web, people):
    task_id = new_task(core, people["ticket"]["id"], "<script>alert(1)</script>", "Desk")
    as_user(web, "alice")
    for path in ("/tasks", f"/tasks/{task_id}"):
        html = text_of(web.get(path))
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- the agent's flow on the task page -----------------------------------------------------

def test_agent_flow_assign_update_solution_decline_close(core, web, people):
    task_id = new_task(core, people["ticket"]["id"], "Line to Leeds down", "Desk")
    as_user(web, "alice")
    page = f"/tasks/{task_id}"
    assert web.post(f"{page}/assign", {"group": "Carrier Group"}, page=page).status_code == 302
    html = text_of(web.get(page))
    assert "Submit Request" in html and "Wait for acknowledgement" in html
    web.post(f"{page}/updates", {"text": "Customer says it flaps"}, page=page)
    assert "Customer says it flaps" in text_of(web.get(page))
    assert "Decline solution" not in text_of(web.get(page))

    core.run(inbound.reassign_external, task_id, solution="Replaced the line card",
             source=inbound.Inbound(provider="Carrier", channel="email"))
    html = text_of(web.get(page))
    assert "Replaced the line card" in html and "Decline solution" in html
    web.post(f"{page}/decline-solution", {"reason": "Still down"}, page=page)
    html = text_of(web.get(page))
    assert "Resolution Rejection" in html and "Decline solution" not in html

    web.post(f"{page}/close", {"solution": "Fixed by the carrier"}, page=page)
    html = text_of(web.get(page))
    assert "closed" in html and ">Closed<" in html
    assert "Add update" not in html


def test_a_failed_action_is_reported_on_the_page(core, web, people):
    task_id = new_task(core, people["ticket"]["id"], "Desk job", "Desk")
    as_user(web, "alice")
    page = f"/tasks/{task_id}"
    response = web.post(f"{page}/close", {"solution": "  "}, page=page, follow_redirects=True)
    assert "solution: Missing data for required field." in text_of(response)
    response = web.post(f"{page}/assign", {"group": "Nobody"}, page=page,
                        follow_redirects=True)
    assert "group &#39;Nobody&#39; not found" in text_of(response)


def test_agent_opens_a_ticket_from_the_web(web, people):
    as_user(web, "alice")
    response = web.post("/tickets", {"title": "Projector broken", "description": "Room 4",
                                     "group": "Desk"}, page="/tickets/new")
    assert response.status_code == 302
    html = text_of(web.get(response.location))
    assert "Projector broken" in html and "Desk" in html


# -- error pages ---------------------------------------------------------------------------

def test_unknown_pages_are_html_and_api_errors_stay_json(web, people):
    assert "There is nothing here" in text_of(web.get("/no-such-page"))
    api = web.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json["error"]["code"] == "NotFound"


def test_an_unexpected_error_shows_a_plain_500_page(web, people, monkeypatch):
    from engine.services import queries

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals at /work/engine.py line 12")

    as_user(web, "alice")
    monkeypatch.setattr(queries, "list_tasks", explode)
    response = web.get("/tasks")
    assert response.status_code == 500
    body = text_of(response)
    assert "Something went wrong on our side" in body
    assert "secret internals" not in body and "Traceback" not in body


def test_pages_send_security_headers(web, people):
    response = web.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_task_the_provider_hands_back_is_marked_in_the_inbox_until_someone_acts(core, web,
                                                                                 people):
    ticket = people["ticket"]["id"]
    returned = new_task(core, ticket, "Needs the site contact", "Carrier Group")
    new_task(core, ticket, "Still with the carrier", "Carrier Group")
    core.run(inbound.reassign_external, returned, message="Info Needed: who is on site?")
    as_user(web, "alice")

    rows = {line for line in text_of(web.get("/tasks")).splitlines()
            if "returned by provider" in line}
    assert len(rows) == 1 and "Needs the site contact" in rows.pop()

    core.run(tasks.add_update, returned, "Ask for Jo at reception", actor="alice")
    page = text_of(web.get("/tasks"))
    assert "returned by provider" not in page and "Still with the carrier" in page
