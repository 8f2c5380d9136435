"""Dashboard login: with a signing key, pages and actions need a session.

The login form takes the signing key (any form the REST API accepts: plain or hashed, with or
without `signkey-<env>-`) and sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the key,
never the key itself. Every form post (the login form included) must also come from the
dashboard's own origin: a browser always sends `Origin` on a POST, so a missing or foreign Origin
is refused. Without a signing key the dashboard stays open, as before (and as `inngest dev`).
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from urllib.parse import parse_qs, urlencode, urlparse

from engine_client import bare_signing_key
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from devserver.signing import key_matches

COOKIE = "devserver_session"
SESSION_SECONDS = 12 * 3600
_SESSION_LABEL = b"nerve devserver dashboard session v1"

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """A page was asked for without a session: answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def auth_key(request: Request) -> str | None:
    key: str | None = getattr(request.app.state, "dashboard_auth_key", None)
    return key


def session_token(key: str) -> str:
    return hmac.new(bare_signing_key(key).encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


def has_session(request: Request) -> bool:
    key = auth_key(request)
    if key is None:
        return True
    cookie = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_token(key).encode())


def strict_same_origin(request: Request) -> bool:
    """Origin present and naming this very scheme and host (a missing Origin does not pass)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    parsed = urlparse(origin)
    return (parsed.scheme, parsed.netloc) == (request.url.scheme, request.headers.get("host", ""))


def lax_same_origin(request: Request) -> bool:
    """The open dashboard's check (no key): a foreign Origin is refused, a missing one passes."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlparse(origin).netloc == request.headers.get("host", "")


async def guard_page(request: Request) -> None:
    """Router dependency for the pages: a session, else a redirect to the login form."""
    if not has_session(request):
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise LoginRequired(path)


async def guard_form_post(request: Request) -> None:
    """Router dependency for the actions: a session and a same-origin form post."""
    if auth_key(request) is None:
        if not lax_same_origin(request):
            raise HTTPException(403, "cross-site form post refused")
        return
    if not has_session(request):
        raise HTTPException(401, "log in to the dashboard first (/login)")
    if not strict_same_origin(request):
        raise HTTPException(403, "form post refused: it must come from the dashboard's own page")


def login_redirect(exc: LoginRequired) -> Response:
    return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)


def local_path(value: str) -> str:
    """Only a path on this server (never `//host` or a URL) is a place to go after login."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/runs"
    return value


def login_page(next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    message = (
        f'<div class="flash err" role="alert" id="login-error">{escape(error)}</div>'
        if error
        else ""
    )
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Log in · Nerve devserver</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard/dashboard.css">
</head>
<body>
<header class="top"><span class="brand">Nerve devserver</span></header>
<main>
<h1>Log in</h1>
<p>This engine runs with a signing key: enter it to use the dashboard.</p>
{message}
<form method="post" action="/login" id="login-form">
  <input type="hidden" name="next" value="{escape(local_path(next_path))}">
  <label>Signing key
    <input type="password" name="key" id="login-key" autocomplete="current-password" required>
  </label>
  <button type="submit" id="login-button">Log in</button>
</form>
</main>
</body>
</html>"""
    return HTMLResponse(html, status)


@router.get("/login")
async def login_form(request: Request) -> Response:
    next_path = request.query_params.get("next", "/runs")
    if auth_key(request) is None:
        return RedirectResponse(local_path(next_path), status_code=303)
    return login_page(next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    key = auth_key(request)
    if key is None:
        return RedirectResponse("/runs", status_code=303)
    if not strict_same_origin(request):
        raise HTTPException(403, "form post refused: it must come from the dashboard's own page")
    body = (await request.body()).decode("utf-8", errors="replace")
    form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
    next_path = local_path(form.get("next", "/runs"))
    if not key_matches(form.get("key", ""), key):
        return login_page(next_path, "That is not this engine's signing key.", 401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        session_token(key),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    if auth_key(request) is not None and not strict_same_origin(request):
        raise HTTPException(403, "form post refused: it must come from the dashboard's own page")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
