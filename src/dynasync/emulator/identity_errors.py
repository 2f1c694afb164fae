"""AADSTS errors of the emulated Entra ID and their JSON envelope (reference §13.3/§13.4).

Each error carries the OAuth ``error`` value, the AADSTS number, the HTTP status and the message as the service
words it; :meth:`AadError.envelope` renders ``error_description`` as
``AADSTS<n>: <message> Trace ID: <guid> Correlation ID: <guid> Timestamp: yyyy-MM-dd HH:mm:ssZ``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

__all__ = ["AadError", "aad"]

_ERROR_URI = "https://login.microsoftonline.com/error?code={code}"


class AadError(Exception):
    """An Entra ID protocol error.

    Args:
        error: The OAuth ``error`` value (``invalid_client``, ``invalid_grant``, ...).
        code: The AADSTS number, or 0 for emulator-only errors (then no ``AADSTS`` prefix is used).
        message: The text after ``AADSTS<n>: ``.
        status: HTTP status for the token/discovery endpoints.
        suberror: Optional ``suberror`` (e.g. ``consent_required``).
    """

    def __init__(
        self, error: str, code: int, message: str, *, status: int = 400, suberror: str | None = None
    ):
        super().__init__(f"AADSTS{code}: {message}" if code else message)
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.suberror = suberror

    @property
    def description(self) -> str:
        """``AADSTS<n>: <message>`` (the part before the trace details)."""
        return str(self)

    def envelope(self, now: dt.datetime, *, correlation_id: str | None = None) -> dict[str, Any]:
        """Return the JSON error body with fresh trace id, the correlation id and a timestamp."""
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"{self.description} Trace ID: {trace_id} Correlation ID: {correlation} Timestamp: {stamp}"
            ),
            "error_codes": [self.code] if self.code else [],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
        }
        if self.code:
            body["error_uri"] = _ERROR_URI.format(code=self.code)
        if self.suberror:
            body["suberror"] = self.suberror
        return body


class _Catalogue:
    """Constructors for the AADSTS errors the emulator produces; texts per reference §13.4."""

    @staticmethod
    def invalid_secret(app_id: str) -> AadError:
        return AadError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{app_id}'.",
            status=401,
        )

    @staticmethod
    def expired_secret(app_id: str) -> AadError:
        return AadError(
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new "
            "keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for "
            "added security: https://aka.ms/certCreds.",
            status=401,
        )

    @staticmethod
    def missing_client_credential() -> AadError:
        return AadError(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            status=401,
        )

    @staticmethod
    def app_not_found(app_id: str, tenant: str) -> AadError:
        return AadError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{app_id}' was not found in the directory '{tenant}'. This can happen "
            "if the application has not been installed by the administrator of the tenant or consented to by any "
            "user in the tenant. You may have sent your authentication request to the wrong tenant.",
        )

    @staticmethod
    def tenant_not_found(tenant: str) -> AadError:
        return AadError(
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud. Check with your subscription administrator, this may happen if there are no "
            "active subscriptions for the tenant.",
        )

    @staticmethod
    def malformed_tenant(tenant: str) -> AadError:
        return AadError(
            "invalid_request",
            900023,
            f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
        )

    @staticmethod
    def no_tenant() -> AadError:
        return AadError(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )

    @staticmethod
    def consent_required(app_id: str, name: str) -> AadError:
        return AadError(
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID '{app_id}' named "
            f"'{name}'. Send an interactive authorization request for this user and resource.",
            suberror="consent_required",
        )

    @staticmethod
    def redirect_mismatch(uri: str, app_id: str) -> AadError:
        return AadError(
            "invalid_request",
            50011,
            f"The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for "
            f"the application '{app_id}'. Make sure the redirect URI sent in the request matches one added to "
            "your application in the Azure portal.",
        )

    @staticmethod
    def resource_not_found(resource: str, tenant: str) -> AadError:
        return AadError(
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named {tenant}. This can happen "
            "if the application has not been installed by the administrator of the tenant or consented to by any "
            "user in the tenant. You might have sent your authentication request to the wrong tenant.",
        )

    @staticmethod
    def permission_not_requested() -> AadError:
        return AadError(
            "invalid_client",
            650057,
            "Invalid resource. The client has requested access to a resource which is not listed in the requested "
            "permissions in the client's application registration. Add the Dynamics CRM permission "
            "'user_impersonation' under API permissions.",
        )

    @staticmethod
    def scope_missing() -> AadError:
        return AadError(
            "invalid_request", 70011, "The provided request must include a 'scope' input parameter."
        )

    @staticmethod
    def scope_invalid(detail: str) -> AadError:
        return AadError(
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. {detail}",
        )

    @staticmethod
    def scope_needs_default(scope: str) -> AadError:
        return AadError(
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )

    @staticmethod
    def missing_parameter(name: str) -> AadError:
        return AadError(
            "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
        )

    @staticmethod
    def unsupported_grant(grant_type: str) -> AadError:
        return AadError(
            "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
        )

    @staticmethod
    def grant_expired() -> AadError:
        return AadError(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        )

    @staticmethod
    def code_redeemed() -> AadError:
        return AadError(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
            "existing refresh token.",
        )

    @staticmethod
    def grant_malformed() -> AadError:
        return AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")

    @staticmethod
    def grant_wrong_client() -> AadError:
        return AadError(
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed. It was issued to a different client or tenant.",
        )

    @staticmethod
    def pkce_mismatch() -> AadError:
        return AadError(
            "invalid_grant",
            50148,
            "The code_verifier does not match the code_challenge supplied in the authorization request.",
        )

    @staticmethod
    def bad_credentials() -> AadError:
        return AadError(
            "invalid_grant", 50126, "Error validating credentials due to invalid username or password."
        )

    @staticmethod
    def user_declined() -> AadError:
        return AadError("access_denied", 65004, "User declined to consent to access the app.")

    @staticmethod
    def login_required() -> AadError:
        return AadError(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        )

    @staticmethod
    def unsupported_response_type(value: str) -> AadError:
        return AadError(
            "unsupported_response_type",
            70005,
            f"response_type '{value}' is not enabled for the application. The emulator issues only 'code'.",
        )

    @staticmethod
    def not_emulated(feature: str) -> AadError:
        """An emulator-only error (no AADSTS number) for a real feature the emulator does not implement."""
        return AadError("invalid_request", 0, f"The dynasync emulator does not implement {feature}.")


aad = _Catalogue()
