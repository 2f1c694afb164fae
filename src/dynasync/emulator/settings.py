"""Tunable behaviour of the emulated Dataverse org: page sizes, limits, token expiry, network rules."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Literal

TopWithMaxPageSize = Literal["ignore_top", "ignore_maxpagesize"]
AboveMaxPageSize = Literal["clamp", "error"]


@dataclass(slots=True)
class EmulatorSettings:
    """Everything about the emulated service that the docs leave open or that tests want small.

    Attributes:
        default_page_size: Rows per page when the client sends no ``odata.maxpagesize`` (service: 5000).
        max_page_size: Largest page a client may ask for (service: 5000).
        top_with_maxpagesize: When both ``$top`` and ``odata.maxpagesize`` are given: the newer docs say
            ``$top`` is ignored (``"ignore_top"``, default); the older say maxpagesize is not applied.
        above_max_page_size: ``"clamp"`` (default) answers with pages of ``max_page_size`` and reports the
            clamped value in ``Preference-Applied``; ``"error"`` answers 400.
        count_cap: ``$count`` and ``totalrecordcount`` are capped at this value (service: 5000).
        change_token_expiry_days: Change-tracking tokens older than this (by the emulator clock) are expired;
            the org's ``expirechangetrackingindays`` (default 7).
        requests_per_window: Service protection: requests per user per window (6000).
        execution_ms_per_window: Service protection: combined execution time per user per window (1,200,000 ms).
        concurrency_limit: Service protection: concurrent requests per user (52).
        window_seconds: Length of the sliding window (300 s).
        ip_allow_list: CIDR ranges allowed to call the Web API; empty means everyone.
        auto_approve_sign_in: The identity emulator signs users in and consents without showing a page.
        tls: Serve HTTPS (the CLI and ``EmulatorServer`` default); plain HTTP when False.
        max_batch_operations: Largest ``$batch`` (service: 1000).
        version: What ``RetrieveVersion`` answers.
    """

    default_page_size: int = 5000
    max_page_size: int = 5000
    top_with_maxpagesize: TopWithMaxPageSize = "ignore_top"
    above_max_page_size: AboveMaxPageSize = "clamp"
    count_cap: int = 5000
    change_token_expiry_days: int = 7
    requests_per_window: int = 6000
    execution_ms_per_window: int = 1_200_000
    concurrency_limit: int = 52
    window_seconds: int = 300
    ip_allow_list: tuple[str, ...] = ()
    auto_approve_sign_in: bool = True
    tls: bool = True
    max_batch_operations: int = 1000
    version: str = "9.2.24101.00194"
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.default_page_size < 1 or self.max_page_size < 1:
            raise ValueError("page sizes must be positive")
        if self.top_with_maxpagesize not in ("ignore_top", "ignore_maxpagesize"):
            raise ValueError(f"unknown top_with_maxpagesize {self.top_with_maxpagesize!r}")
        if self.above_max_page_size not in ("clamp", "error"):
            raise ValueError(f"unknown above_max_page_size {self.above_max_page_size!r}")
        self._networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.ip_allow_list)

    def ip_allowed(self, ip: str | None) -> bool:
        """Return True when ``ip`` may call the Web API under the allow-list (always, when it is empty)."""
        if not self._networks:
            return True
        if ip is None:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def with_changes(self, **changes: object) -> EmulatorSettings:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
