from __future__ import annotations

import pickle

import pytest

from dynasync.errors import (
    AuthError,
    ConfigError,
    CursorExpiredError,
    FatalSourceError,
    RetriableError,
    SkippableRecordError,
)
from dynasync.synapses.dynamics import errors as E

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
CTX = E.ErrorContext(
    org_url="https://contoso.crm.dynamics.com",
    client_id=CLIENT,
    tenant=TENANT,
    authority=f"https://login.microsoftonline.com/{TENANT}",
    redirect_url="https://sync.example.com/oauth/dynamics/prod/callback",
)


def aad(code: int, error: str = "invalid_client", text: str = "x") -> dict[str, object]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: t\r\nCorrelation ID: corr-1\r\nTimestamp: 2024-01-01 00:00:00Z",
        "error_codes": [code],
        "correlation_id": "corr-1",
    }


@pytest.mark.parametrize(
    ("code", "error", "cls", "category", "remedy_bits"),
    [
        (65001, "invalid_grant", E.ConsentRequiredError, AuthError,
         ["Grant admin consent", f"https://login.microsoftonline.com/{TENANT}/adminconsent?client_id={CLIENT}"]),
        (7000215, "invalid_client", E.InvalidClientSecretError, AuthError, ["Value", "not its Secret ID"]),
        (7000222, "invalid_client", E.ExpiredClientSecretError, AuthError, ["expired", "New client secret", "Certificates & secrets"]),
        (700016, "unauthorized_client", E.UnknownClientError, AuthError, [CLIENT, TENANT, "Application (client) ID"]),
        (90002, "invalid_tenant", E.UnknownTenantError, AuthError, ["Directory (tenant) ID", "login.microsoftonline.com"]),
        (900023, "invalid_request", E.UnknownTenantError, AuthError, ["GUID"]),
        (50011, "invalid_request", E.RedirectUriMismatchError, AuthError,
         ["Authentication > Add a platform > Web", "https://sync.example.com/oauth/dynamics/prod/callback"]),
        (70008, "invalid_grant", E.ReauthenticationRequiredError, AuthError, ["Authenticate"]),
        (500011, "invalid_resource", E.ResourceRejectedError, AuthError, ["Organization URL", "user_impersonation"]),
        (70011, "invalid_scope", E.ResourceRejectedError, AuthError, ["Organization URL"]),
    ],
)  # fmt: skip
def test_aadsts_mapping(code: int, error: str, cls: type, category: type, remedy_bits: list[str]) -> None:
    err = E.from_aad_result(aad(code, error, "Something went wrong."), CTX, status=401)
    assert type(err) is cls
    assert isinstance(err, category) and isinstance(err, E.DynamicsError)
    assert err.code == f"AADSTS{code}"
    assert err.request_id == "corr-1"
    assert err.status == 401
    assert err.message == f"AADSTS{code}: Something went wrong."  # trace lines stripped
    for bit in remedy_bits:
        assert bit in (err.remedy or ""), bit
    assert "corr-1" in err.explain()


def test_unauthorized_and_callback_consent_errors() -> None:
    err = E.from_aad_result({"error": "access_denied", "error_description": "Unauthorized"}, CTX)
    assert isinstance(err, E.ConsentRequiredError)
    assert CTX.admin_consent_url in (err.remedy or "")


def test_unknown_aad_error_is_generic_auth_error() -> None:
    err = E.from_aad_result({"error": "invalid_client", "error_description": "AADSTS1: odd"}, CTX)
    assert type(err) is E.DynamicsAuthError
    assert err.code == "AADSTS1"


def test_msal_exception_chain_mapping() -> None:
    try:
        try:
            raise ValueError(
                'OIDC Discovery failed on https://x. HTTP status: 400, Error: {"error":"invalid_tenant",'
                '"error_description":"AADSTS90002: Tenant \'nope\' not found.","error_codes":[90002]}'
            )
        except ValueError:
            raise ValueError("Unable to get authority configuration for https://x") from None
    except ValueError as exc:
        # "from None" hides the cause but keeps the context, which is where msal's detail lives
        err = E.from_msal_exception(exc, CTX)
    assert isinstance(err, E.UnknownTenantError)


def dv(status: int, code: str, message: str, **headers: str) -> E.DynamicsError:
    body = {"error": {"code": code, "message": message}}
    return E.from_dataverse_response(status, {"x-ms-service-request-id": "rid-9", **headers}, body, CTX)


def test_application_user_missing() -> None:
    err = dv(403, "0x80072560", "The user is not a member of the organization.")
    assert isinstance(err, E.ApplicationUserMissingError) and isinstance(err, AuthError)
    assert err.status == 403 and err.code == "0x80072560" and err.request_id == "rid-9"
    for bit in ("Application Users", "New", CLIENT, "Advanced Settings", "security role"):
        assert bit in (err.remedy or "")


def test_ip_firewall_says_where_to_allow_this_machine() -> None:
    message = (
        "The request you are trying to make is rejected as access to your IP is blocked. "
        "Contact your administrator for more information."
    )
    err = dv(403, "0x80048306", message)
    assert (
        isinstance(err, E.IpBlockedError) and isinstance(err, ConfigError) and not isinstance(err, AuthError)
    )
    for bit in ("IP firewall", "Privacy + Security", "allowed IP ranges", CTX.org_url):
        assert bit in (err.remedy or "")
    assert isinstance(dv(403, "0x80040220", "missing prvReadAccount"), E.PrivilegeDeniedError)  # not confused


def test_privilege_denied_names_privilege_and_table() -> None:
    message = (
        "Principal user (Id=e0a6..., type=8, roleCount=1, privilegeCount=5, accessMode=0), is missing prvReadAccount "
        "privilege (Id=886b...) on OTC=1 for entity 'account'. context: ..."
    )
    err = dv(403, "0x80040220", message)
    assert isinstance(err, E.PrivilegeDeniedError)
    assert err.privilege == "prvReadAccount" and err.table == "account"
    assert "prvReadAccount (Read on table 'account')" in (err.remedy or "")
    err = dv(403, "0x80040220", "missing prvAppendToContact privilege on entity 'contact'")
    assert "Append To" in (err.remedy or "")


def test_change_tracking_and_expired_token() -> None:
    err = dv(400, "0x80072491", "Entity account isn't enabled for change tracking.")
    assert isinstance(err, E.ChangeTrackingDisabledError) and isinstance(err, FatalSourceError)
    assert err.table == "account"
    assert "Track changes" in (err.remedy or "") and "account" in (err.remedy or "")
    err = dv(
        400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
    )
    assert isinstance(err, E.DeltaTokenExpiredError) and isinstance(err, CursorExpiredError)
    assert "full" in (err.remedy or "")


def test_throttling_and_server_errors_are_retriable() -> None:
    err = dv(429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
             **{"Retry-After": "17"})  # fmt: skip
    assert isinstance(err, E.ThrottledError) and isinstance(err, RetriableError)
    assert err.retry_after == 17.0
    err = dv(503, "0x8004A001", "The server is busy")
    assert isinstance(err, E.ServiceUnavailableError) and isinstance(err, RetriableError)
    assert err.retry_after is None


def test_conflicts_and_not_found() -> None:
    err = dv(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )
    assert (
        isinstance(err, E.ConcurrencyConflictError) and isinstance(err, SkippableRecordError) and err.conflict
    )
    err = dv(412, "0x80040237", "A record with matching key values already exists.")
    assert isinstance(err, E.DuplicateRecordError) and err.conflict
    err = dv(404, "0x80040217", "account With Id = 9f1c Does Not Exist")
    assert isinstance(err, E.RecordNotFoundError)
    err = dv(404, "0x80060888", "Resource not found for the segment 'acounts'.")
    assert isinstance(err, E.ResourceNotFoundError) and isinstance(err, FatalSourceError)


def test_request_ids_and_bodies() -> None:
    err = E.from_dataverse_response(401, {"REQ_ID": "req-2"}, b"", CTX)
    assert isinstance(err, E.TokenRejectedError) and err.request_id == "req-2"
    err = E.from_dataverse_response(400, {}, b"<html>oops</html>", CTX)
    assert isinstance(err, E.RequestRejectedError) and "oops" in err.message
    err = E.from_dataverse_response(400, {}, {"error": {"code": "0x80044331", "message": "too long"}}, CTX,
                                    record_write=True)  # fmt: skip
    assert isinstance(err, E.RecordRejectedError)
    err = E.from_dataverse_response(302, {"location": "https://evil"}, b"", CTX)
    assert isinstance(err, E.RedirectRefusedError)


def test_retry_after_parsing() -> None:
    assert E.parse_retry_after("5") == 5.0
    assert E.parse_retry_after("1,200.50") == 1200.5
    assert E.parse_retry_after(None) is None
    assert E.parse_retry_after("soon") is None
    assert E.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_config_error_lists_fields_and_pickles() -> None:
    err = E.DynamicsConfigError([E.ConfigProblem("org_url", "bad", "https://contoso.crm.dynamics.com")])
    assert isinstance(err, ConfigError)
    clone = pickle.loads(pickle.dumps(err))
    assert clone.problems == err.problems and clone.message == err.message
    throttled = pickle.loads(pickle.dumps(E.ThrottledError("t", retry_after=3, status=429, code="c")))
    assert throttled.retry_after == 3 and throttled.status == 429
