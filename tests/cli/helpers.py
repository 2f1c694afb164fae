"""Helpers for CLI tests: a CliRunner wrapper with its own home, and a browser that plays the Microsoft sign-in."""

from __future__ import annotations

import json
import re
import socket
import ssl
import webbrowser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from typer.testing import CliRunner, Result

from dynasync.cli import app
from dynasync.demo import SignInForm  # the demo plays the same browser as these tests

# Variables that would make rich think it writes to a terminal, or that point dynasync elsewhere.
_CLEARED_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "DYNASYNC_UDM_URL", "DYNASYNC_SECRET_KEY")


def free_port() -> int:
    """A loopback port that was free a moment ago (for the OAuth callback listener)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cli:
    """Runs ``dynasync`` in-process with its own home directory and public base URL (callback port)."""

    def __init__(self, home: Path, *, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.public_base_url = f"http://localhost:{self.port}"
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {name: None for name in _CLEARED_ENV}
        self.env.update({"DYNASYNC_HOME": str(home), "DYNASYNC_PUBLIC_BASE_URL": self.public_base_url})

    def run(self, *args: object, expect: int | None = 0, input: str | None = None) -> Result:
        """Invoke the CLI; assert the exit code (unless ``expect`` is None) and that no traceback leaked."""
        argv = [str(a) for a in args]
        result = self.runner.invoke(app, argv, env=self.env, input=input)
        described = (
            f"dynasync {' '.join(argv)} exited {result.exit_code}\n--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}--- exception {result.exception!r}"
        )
        if expect is not None:
            assert result.exit_code == expect, described
        if "--debug" not in argv:
            assert "Traceback" not in result.output, described
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), described
            # The traceback's frames would keep the command's objects (and their connections) alive.
            error: BaseException | None = result.exception
            while error is not None:
                error.__traceback__ = None
                error = error.__context__
            result.exc_info = None
        return result

    def json(self, *args: object, expect: int = 0) -> Any:
        """Invoke with ``--json``; stdout must be exactly one JSON document."""
        result = self.run("--json", *args, expect=expect)
        return json.loads(result.stdout)


def one_paragraph_error(result: Result) -> str:
    """The error of a failed command: stderr is one ``Error:`` paragraph (whitespace normalised)."""
    text = result.stderr.strip()
    assert text.startswith("Error: "), text
    assert "\n\n" not in text and "Traceback" not in text, text
    return re.sub(r"\s+", " ", text)


class SignInBrowser(webbrowser.BaseBrowser):
    """The user's browser for ``webbrowser.open``: loads the sign-in URL and submits the auto-posting form.

    With ``emulator.identity.auto_approve`` the emulator's sign-in answers at once with the ``form_post`` page
    that a real browser submits to the redirect URL (the CLI's loopback listener); this does the same with httpx.
    """

    def __init__(self, ca_path: Path) -> None:
        super().__init__("dynasync-test-browser")
        self.ca_path = ca_path
        self.opened: list[str] = []
        self.final_pages: list[str] = []
        self.errors: list[BaseException] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        try:
            self.final_pages.append(self._visit(url))
        except Exception as error:  # noqa: BLE001 - recorded for the test to show; a browser never raises
            self.errors.append(error)
            return False
        return True

    def _visit(self, url: str) -> str:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        with httpx.Client(verify=context, trust_env=False, follow_redirects=False, timeout=30) as client:
            response = client.get(url)
            for _ in range(10):
                if response.is_redirect:
                    response = client.get(urljoin(str(response.url), response.headers["location"]))
                    continue
                finder = SignInForm()
                finder.feed(response.text)
                if finder.method == "post" and finder.action:
                    response = client.post(urljoin(str(response.url), finder.action), data=finder.fields)
                    continue
                return response.text
        raise AssertionError(f"the sign-in did not settle after 10 pages: {url}")


def synced_cli(server: Any, home: Path, *, name: str = "Dyn") -> Cli:
    """A CLI home with a synapse on ``server`` (client credentials), activated with the default mapping, synced."""
    app = server.emulator.register_app(f"{name} app")
    cli = Cli(home)
    assert server.ca_path is not None
    cli.run("synapse", "add", "dynamics", "--name", name, "--endpoint-url", server.authority,
            "--org-url", server.org_url, "--emulator-ca", server.ca_path)  # fmt: skip
    cli.run("synapse", "auth", "--client-id", app["client_id"], "--client-secret", app["client_secret"],
            "--client-credentials")  # fmt: skip
    cli.run("synapse", "activate", "--default-mapping")
    cli.run("sync")
    return cli
