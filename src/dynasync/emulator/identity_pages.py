"""HTML of the emulated Microsoft sign-in: the sign-in + consent page and the error page.

Every interpolated value goes through ``html.escape``; pages are self-contained (no scripts, no external assets).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from dynasync.emulator.directory import AppRegistration, User
from dynasync.emulator.identity_errors import AadError

__all__ = ["error_page", "form_post_page", "sign_in_page"]

_STYLE = """
body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}
main{background:#fff;max-width:440px;margin:48px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:0 0 16px}label{display:block;margin:12px 0 4px}
select,input[type=password]{width:100%;padding:6px;font-size:15px;box-sizing:border-box}
.buttons{margin-top:24px;display:flex;gap:8px;justify-content:flex-end}
button{padding:6px 20px;font-size:15px}button.primary{background:#0067b8;color:#fff;border:0}
.error{color:#e81123;margin:12px 0}.small{font-size:13px;color:#555}code{word-break:break-all}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}<p class='small'>dynasync local Entra ID emulator</p></main></body></html>"
    )


def sign_in_page(
    *,
    action: str,
    request_id: str,
    app: AppRegistration,
    users: Sequence[User],
    kind: str,
    resource: str | None,
    selected_upn: str | None = None,
    error: str | None = None,
) -> str:
    """Return the sign-in + consent page: a user picker, a password field, Accept and Cancel buttons.

    Args:
        action: The URL the form posts to (the same authorize/adminconsent path).
        request_id: The pending request id, posted back as a hidden field.
        app: The application asking for access.
        users: Who may sign in (the picker's entries).
        kind: ``authorize`` (user sign-in and consent) or ``adminconsent`` (an administrator consents for all).
        resource: The org URL the app asks for, shown in the permission list.
        selected_upn: The user preselected in the picker (``login_hint``).
        error: A message shown above the form (e.g. wrong password).
    """
    options = "".join(
        f"<option value='{html.escape(u.upn)}'{' selected' if u.upn == selected_upn else ''}>"
        f"{html.escape(u.display_name)} ({html.escape(u.upn)}){' - administrator' if u.is_admin else ''}</option>"
        for u in users
    )
    heading = (
        "Permissions requested"
        if kind == "authorize"
        else "Permissions requested - Accept for your organization"
    )
    permission = (
        f"<li>Access Dynamics 365 as organization users (Dynamics CRM <code>user_impersonation</code>)"
        f"{' on <code>' + html.escape(resource) + '</code>' if resource else ''}</li>"
    )
    org_choice = (
        "<label><input type='checkbox' name='consent_org' value='on' checked> "
        "Consent on behalf of your organization (administrators only)</label>"
        if kind == "authorize"
        else ""
    )
    error_html = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = (
        f"<h1>Sign in</h1>{error_html}"
        f"<form method='post' action='{html.escape(action)}'>"
        f"<input type='hidden' name='request_id' value='{html.escape(request_id)}'>"
        f"<label for='username'>Account</label><select id='username' name='username'>{options}</select>"
        "<label for='password'>Password</label>"
        "<input id='password' type='password' name='password' autocomplete='current-password'>"
        f"<h2 style='font-size:17px'>{html.escape(heading)}</h2>"
        f"<p><b>{html.escape(app.display_name)}</b> <span class='small'>(application id "
        f"<code>{html.escape(app.client_id)}</code>)</span> would like to:</p><ul>{permission}"
        "<li>Sign you in and read your profile</li><li>Maintain access to data you have given it access to</li>"
        f"</ul>{org_choice}"
        "<div class='buttons'><button type='submit' name='action' value='cancel'>Cancel</button>"
        "<button class='primary' type='submit' name='action' value='accept'>Accept</button></div></form>"
    )
    return _page("Sign in to your account", body)


def error_page(error: AadError, *, correlation_id: str, timestamp: str) -> str:
    """Return the page shown instead of redirecting, when the redirect target cannot be trusted."""
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class='error'>{html.escape(error.description)}</p>"
        "<p class='small'>Troubleshooting details</p>"
        f"<p class='small'>Error: {html.escape(error.error)}<br>Correlation ID: {html.escape(correlation_id)}"
        f"<br>Timestamp: {html.escape(timestamp)}</p>"
    )
    return _page("Sign in to your account", body)


def form_post_page(action: str, fields: dict[str, str]) -> str:
    """Return the ``response_mode=form_post`` page: a form that posts the result to the redirect URI.

    A script submits it at once in a browser; the button is there for clients without scripts.
    """
    inputs = "".join(
        f"<input type='hidden' name='{html.escape(name)}' value='{html.escape(value)}'>"
        for name, value in fields.items()
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Working...</title></head>"
        "<body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{html.escape(action)}'>{inputs}"
        "<noscript><p>Script is disabled. Click Submit to continue.</p></noscript>"
        "<button type='submit'>Submit</button></form></body></html>"
    )
