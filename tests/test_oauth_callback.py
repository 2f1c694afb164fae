"""The loopback listener that receives the OAuth redirect: GET query, form_post POST, wrong paths, timeouts."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from dynasync.errors import AuthError, ConfigError
from dynasync.oauth_callback import CallbackListener

PATH = "/oauth/dynamics/dyn/callback"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def url() -> str:
    return f"http://localhost:{_free_port()}{PATH}"


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=5)


def test_get_callback_returns_the_query(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.get(url, params={"code": "c0de", "state": "s1", "empty": ""})
        assert page.status_code == 200 and "Signed in" in page.text
        assert "c0de" not in page.text  # the code is never echoed back into the page
        assert listener.wait(1) == {"code": "c0de", "state": "s1", "empty": ""}


def test_form_post_callback_returns_the_fields(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.post(url, data={"code": "c0de", "state": "s1", "session_state": "x"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert listener.wait(1) == {"code": "c0de", "state": "s1", "session_state": "x"}


def test_error_answer_is_passed_on_and_says_so(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.post(url, data={"error": "consent_required", "error_description": "AADSTS65001 ..."})
        assert "Sign-in failed" in page.text and "terminal" in page.text
        assert listener.wait(1)["error"] == "consent_required"


def test_other_paths_are_not_found_and_keep_waiting(url: str) -> None:
    base = url.removesuffix(PATH)
    with CallbackListener(url) as listener, _client() as http:
        assert http.get(f"{base}/favicon.ico").status_code == 404
        assert http.post(f"{base}/elsewhere", data={"code": "x"}).status_code == 404
        with pytest.raises(AuthError):
            listener.wait(0.2)
        http.get(url, params={"code": "late", "state": "s"})
        assert listener.wait(1)["code"] == "late"


def test_timeout_is_an_auth_error_with_a_remedy(url: str) -> None:
    with CallbackListener(url) as listener, pytest.raises(AuthError) as caught:
        listener.wait(0.1)
    assert "No sign-in came back within 0.1 seconds" in caught.value.message
    assert "dynasync synapse auth" in (caught.value.remedy or "")


def test_waiting_in_another_thread(url: str) -> None:
    got: dict[str, str] = {}
    with CallbackListener(url) as listener:
        waiter = threading.Thread(target=lambda: got.update(listener.wait(5)))
        waiter.start()
        with _client() as http:
            http.get(url, params={"code": "c", "state": "s"})
        waiter.join(5)
    assert got == {"code": "c", "state": "s"}


def test_listener_stops_on_exit(url: str) -> None:
    with CallbackListener(url):
        pass
    with _client() as http, pytest.raises(httpx.ConnectError):
        http.get(url)


@pytest.mark.parametrize(
    "redirect",
    [
        "https://localhost:8765/oauth/dynamics/dyn/callback",  # https would need a certificate
        "http://sync.example.com/oauth/dynamics/dyn/callback",  # not this machine
        "http://10.0.0.5:8765/oauth/dynamics/dyn/callback",
    ],
)
def test_only_loopback_http_redirects(redirect: str) -> None:
    with pytest.raises(ConfigError, match="loopback http URL") as caught:
        CallbackListener(redirect)
    assert "DYNASYNC_PUBLIC_BASE_URL" in (caught.value.remedy or "")


def test_port_in_use(url: str) -> None:
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with (
            pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{port}") as caught,
            CallbackListener(url),
        ):
            pass
    assert "DYNASYNC_PUBLIC_BASE_URL" in (caught.value.remedy or "")


def test_oversized_form_is_cut_and_refused_politely(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.post(
            url,
            content=b"code=" + b"x" * 100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert page.status_code == 200
        assert len(listener.wait(1)["code"]) < 70_000


def test_requests_that_are_no_sign_in_answer_do_not_end_the_wait(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.get(url)  # the redirect URL opened by hand
        assert page.status_code == 400 and "sign-in answer" in page.text
        with pytest.raises(AuthError):
            listener.wait(0.1)
        http.post(url, data={"code": "first", "state": "s"})
        second = http.post(url, data={"code": "second", "state": "s"})  # a refresh or a second tab
        assert "Already received" in second.text
        assert listener.wait(1)["code"] == "first"


def test_malformed_content_length(url: str) -> None:
    with CallbackListener(url) as listener, _client() as http:
        page = http.post(url, content=b"", headers={"Content-Length": "0"})
        assert page.status_code == 400
        raw = socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=5)
        with raw:
            raw.sendall(f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: many\r\n\r\n".encode())
            assert raw.recv(100).startswith(b"HTTP/1.0 400")
        with pytest.raises(AuthError):
            listener.wait(0.1)
