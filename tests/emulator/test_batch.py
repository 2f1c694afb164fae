"""$batch: multipart parsing (CRLF/LF, quoted boundaries), changesets with Content-ID, errors, the response shape."""

from __future__ import annotations

import json
import re
import uuid

from conftest import API, ORG, Api

from dynasync.emulator.batch import parse_batch


def _batch(parts: list[str], boundary: str = "batch_abc", newline: str = "\r\n") -> bytes:
    text = "".join(f"--{boundary}{newline}{p}{newline}" for p in parts) + f"--{boundary}--{newline}"
    return text.replace("\r\n", newline).encode()


def _op(
    method: str,
    url: str,
    body: dict[str, object] | None = None,
    content_id: str | None = None,
    headers: str = "",
) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        head += f"Content-ID: {content_id}\r\n"
    inner = f"{method} {url} HTTP/1.1\r\n{headers}"
    if body is not None:
        inner += "Content-Type: application/json; type=entry\r\n\r\n" + json.dumps(body)
    else:
        inner += "\r\n"
    return head + "\r\n" + inner


def _changeset(ops: list[str], boundary: str = "changeset_xyz") -> str:
    body = "".join(f"--{boundary}\r\n{op}\r\n" for op in ops) + f"--{boundary}--"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{body}'


def _send(
    api: Api, payload: bytes, boundary: str = "batch_abc", quoted: bool = True, prefer: str | None = None
):  # type: ignore[no-untyped-def]
    value = f'"{boundary}"' if quoted else boundary
    headers = {"Content-Type": f"multipart/mixed; boundary={value}"}
    if prefer:
        headers["Prefer"] = prefer
    return api.post("$batch", content=payload, headers=headers)


def _parts(response_text: str) -> list[str]:
    boundary = re.search(r"--(batchresponse_[0-9a-f-]+)", response_text)
    assert boundary is not None
    return [p for p in response_text.split(f"--{boundary.group(1)}") if p.strip() and p.strip() != "--"]


def test_changeset_with_content_id_references_and_a_get(api: Api) -> None:
    changeset = _changeset(
        [
            _op("POST", f"{API}contacts", {"firstname": "Oncall", "lastname": "Contact"}, "1"),
            _op("POST", f"{ORG}{API}accounts", {"name": "Contoso", "primarycontactid@odata.bind": "$1"}, "2"),
            _op("PATCH", "$1", {"jobtitle": "Boss"}, "3"),
        ]
    )
    response = _send(
        api, _batch([changeset, _op("GET", f"{API}accounts?$select=name&$filter=name eq 'Contoso'")])
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    parts = _parts(response.text)
    assert len(parts) == 2
    assert "Content-Type: multipart/mixed; boundary=changesetresponse_" in parts[0]
    assert parts[0].count("HTTP/1.1 204 No Content") == 3
    assert "Content-ID: 1" in parts[0] and "Content-ID: 2" in parts[0]
    assert "OData-EntityId: https://org.test/api/data/v9.2/contacts(" in parts[0]
    assert "HTTP/1.1 200 OK" in parts[1]
    assert "odata.streaming=true" in parts[1]
    document = json.loads(parts[1].split("\r\n\r\n", 2)[2])
    assert document["value"][0]["name"] == "Contoso"
    account = api.get(
        f"accounts({document['value'][0]['accountid']})?$expand=primarycontactid($select=jobtitle)"
    ).json()
    assert account["primarycontactid"]["jobtitle"] == "Boss"


def test_failed_changeset_rolls_back_and_stops(api: Api) -> None:
    before = api.emulator.store.count("contact")
    changeset = _changeset(
        [
            _op("POST", "contacts", {"lastname": "Will be rolled back"}, "1"),
            _op("POST", "contacts", {"lastname": "x" * 500}, "2"),
        ]
    )
    after_part = _op("POST", "contacts", {"lastname": "Never runs"})
    response = _send(api, _batch([changeset, after_part]))
    assert response.status_code == 400
    parts = _parts(response.text)
    assert len(parts) == 1
    assert "HTTP/1.1 400 Bad Request" in parts[0]
    assert '"code":"0x80044331"' in parts[0]
    assert api.emulator.store.count("contact") == before


def test_continue_on_error_runs_everything(api: Api) -> None:
    before = api.emulator.store.count("account")
    response = _send(
        api,
        _batch(
            [
                _op("POST", "accounts", {"nope": 1}),
                _op("POST", "accounts", {"name": "ok"}),
                _op("GET", f"accounts({uuid.uuid4()})"),
            ]
        ),
        prefer="odata.continue-on-error",
    )
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.continue-on-error"
    statuses = re.findall(r"HTTP/1.1 (\d{3})", response.text)
    assert statuses == ["400", "204", "404"]
    assert api.emulator.store.count("account") == before + 1


def test_lf_only_and_unquoted_boundary(api: Api) -> None:
    payload = _batch([_op("GET", "WhoAmI")], boundary="b1", newline="\n")
    response = _send(api, payload, boundary="b1", quoted=False)
    assert response.status_code == 200
    assert "WhoAmIResponse" in response.text


def test_get_inside_changeset_and_bad_bodies_are_rejected(api: Api) -> None:
    bad = _send(api, _batch([_changeset([_op("GET", "accounts")])]))
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/json")
    assert "not allowed inside a change set" in bad.json()["error"]["message"]
    assert api.post("$batch", content=b"x", headers={"Content-Type": "application/json"}).status_code == 400
    unknown = _send(api, _batch([_changeset([_op("PATCH", "$9", {"name": "x"}, "1")])]))
    assert "Content-ID Reference: '$9' does not exist in the batch context." in unknown.text


def test_operation_limit(api: Api) -> None:
    api.emulator.update_settings(max_batch_operations=2)
    response = _send(api, _batch([_op("GET", "WhoAmI")] * 3))
    assert response.status_code == 400
    assert "exceeds the maximum" in response.json()["error"]["message"]


def test_parser_accepts_inner_headers_and_absolute_urls() -> None:
    payload = _batch(
        [
            _op(
                "PATCH",
                f"{ORG}{API}accounts(1)",
                {"a": 1},
                headers="If-Match: *\r\nPrefer: return=representation\r\n",
            )
        ]
    )
    items = parse_batch(payload, 'multipart/mixed; boundary="batch_abc"', 10)
    operation = items[0]
    assert operation.method == "PATCH"  # type: ignore[union-attr]
    assert operation.headers["if-match"] == "*"  # type: ignore[union-attr]
    assert json.loads(operation.body) == {"a": 1}  # type: ignore[union-attr]
