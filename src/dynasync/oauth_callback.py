"""A one-shot loopback HTTP listener that receives the OAuth redirect (``?code=...&state=...``) from the browser."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, urlsplit

from dynasync.errors import AuthError, ConfigError

_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>dynasync</title></head>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class CallbackListener:
    """Listens on the host and port of a loopback redirect URL until the browser comes back to its path.

    Use as a context manager; :meth:`wait` returns the callback's query parameters.
    """

    def __init__(self, redirect_url: str) -> None:
        parts = urlsplit(redirect_url)
        if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
            raise ConfigError(
                f"dynasync can only receive the sign-in callback itself on a loopback http URL, not {redirect_url}.",
                remedy="Set DYNASYNC_PUBLIC_BASE_URL to http://localhost:<port>, or finish the sign-in in the web UI.",
            )
        self.path = parts.path
        self._host = "127.0.0.1" if parts.hostname == "localhost" else str(parts.hostname)
        self._port = parts.port or 80
        self._result: dict[str, str] | None = None
        self._done = threading.Event()
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CallbackListener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != listener.path:
                    self.send_error(404)
                    return
                self._answer(dict(parse_qsl(parts.query, keep_blank_values=True)))

            def do_POST(self) -> None:
                # response_mode=form_post: the browser posts the code as a form (it stays out of URLs and logs).
                if urlsplit(self.path).path != listener.path:
                    self.send_error(404)
                    return
                try:
                    length = max(0, min(int(self.headers.get("Content-Length") or 0), 65536))
                except ValueError:
                    length = 0
                form = self.rfile.read(length).decode("utf-8", "replace")
                self._answer(dict(parse_qsl(form, keep_blank_values=True)))

            def _answer(self, query: dict[str, str]) -> None:
                if "code" not in query and "error" not in query:
                    # Not a sign-in answer (someone opened the redirect URL by hand): keep waiting for the real one.
                    self._page(
                        400, "Nothing to do here", "This address receives the Microsoft sign-in answer."
                    )
                    return
                if listener._done.is_set():
                    # A repeated answer (refresh, second tab) never replaces the first one.
                    self._page(200, "Already received", "dynasync already received a sign-in answer.")
                    return
                if "error" in query:
                    self._page(
                        200,
                        "Sign-in failed",
                        "dynasync received the answer; the terminal says what to do next.",
                    )
                else:
                    self._page(200, "Signed in", "dynasync received the sign-in. You can close this window.")
                listener._result = query
                listener._done.set()

            def _page(self, status: int, title: str, text: str) -> None:
                body = _PAGE.format(title=title, text=text).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # The query holds the authorization code: never log requests.
                return

        try:
            self._server = HTTPServer((self._host, self._port), Handler)
        except OSError as error:
            raise ConfigError(
                f"Cannot listen on {self._host}:{self._port} for the sign-in callback: {error.strerror}.",
                remedy="Stop what uses that port or choose another DYNASYNC_PUBLIC_BASE_URL port.",
            ) from None
        # A short poll interval: shutdown() waits for the loop's next poll, and the CLI should not linger.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oauth-callback",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str]:
        """Block until the callback arrives; raise AuthError after ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise AuthError(
                f"No sign-in came back within {timeout:g} seconds.",
                remedy="Run `dynasync synapse auth` again and finish the Microsoft sign-in in the browser.",
            )
        assert self._result is not None
        return self._result
