"""Reading the emulator with labels from the service or from the metadata: same rows, fewer bytes."""

from __future__ import annotations

import dataclasses

import pytest
from synapse_env import collect, make_synapse, run, server, stream_of, tokens  # noqa: F401  (fixtures)

from dynasync.emulator.server import EmulatorServer
from dynasync.synapses.base import ColumnType, SourceRecord, StreamSpec

pytestmark = pytest.mark.e2e


async def _read(synapse_labels: str, srv: EmulatorServer, provider: object) -> tuple[list[SourceRecord], int]:
    async with make_synapse(srv, provider, labels=synapse_labels, page_size=9) as synapse:
        stream = await stream_of(synapse, "account")
        before = synapse.client.counters.bytes_received
        batches = await collect(synapse, stream, None)
        return [r for b in batches for r in b.upserts], synapse.client.counters.bytes_received - before


def test_metadata_labels_read_the_same_rows_with_fewer_bytes(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    server.emulator.reset(seed={"accounts": 20, "contacts": 0})
    service, service_bytes = run(_read("service", server, tokens))
    metadata, metadata_bytes = run(_read("metadata", server, tokens))

    assert len(service) == 20
    assert [(r.id, r.values, r.version, r.modified_on) for r in metadata] == [
        (r.id, r.values, r.version, r.modified_on) for r in service
    ]
    assert metadata_bytes < service_bytes * 0.75  # no FormattedValue on every value
    for by_service, by_metadata in zip(service, metadata, strict=True):
        # Choice labels agree; lookup names and boolean wording exist only in the service's annotations.
        assert by_metadata.labels["statuscode"] == by_service.labels["statuscode"]
        assert set(by_metadata.labels) <= set(by_service.labels)
        assert "ownerid" in by_service.labels and "ownerid" not in by_metadata.labels


def test_a_stream_without_polymorphic_lookups_is_read_without_annotations(
    server: EmulatorServer,  # noqa: F811
    tokens: object,  # noqa: F811
) -> None:
    server.emulator.reset(seed={"accounts": 12, "contacts": 0})

    async def go() -> tuple[StreamSpec, list[SourceRecord]]:
        async with make_synapse(server, tokens, labels="metadata", page_size=5) as synapse:
            full = await stream_of(synapse, "account")
            narrowed = dataclasses.replace(
                full,
                columns={
                    k: c
                    for k, c in full.columns.items()
                    if c.type is not ColumnType.LOOKUP or len(c.targets) == 1
                },
            )
            batches = await collect(synapse, narrowed, None)
            return narrowed, [r for b in batches for r in b.upserts]

    stream, records = run(go())
    assert len(records) == 12 and "ownerid" not in stream.columns
    currency = records[0].values["transactioncurrencyid"]
    assert currency is not None and currency.table == "transactioncurrency"  # single target: no annotation
    assert all(r.modified_on is not None and r.version for r in records)
