"""UDM versions a run created from one source table: records still at one of them hold what that source holds.

A full load creates every record from the source, so the write-back that follows would re-read and compare all of
them only to find them in sync. The read pipeline notes the versions of the records it created (after their
transaction committed); the write-back skips a record still at such a version and moves its watermark over
runs of them without reading them. Versions are store-wide and unique, so a record changed since (by anyone)
has a newer version that is not in the set. Kept as sorted, disjoint, inclusive ranges: a page of creates is one
range, so the set stays tiny.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class VersionSet:
    """A set of UDM versions stored as sorted disjoint ranges ``[start, end]``."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        return sum(end - start + 1 for start, end in zip(self._starts, self._ends, strict=True))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def add_all(self, versions: Iterable[int]) -> None:
        """Add versions (any order; runs of consecutive numbers become one range)."""
        for version in sorted(set(versions)):
            self.add(version)

    def add(self, version: int) -> None:
        """Add one version."""
        starts, ends = self._starts, self._ends
        index = bisect.bisect_right(starts, version)
        if index and ends[index - 1] >= version:
            return  # already inside the range before
        joins_left = bool(index) and ends[index - 1] == version - 1
        joins_right = index < len(starts) and starts[index] == version + 1
        if joins_left and joins_right:
            ends[index - 1] = ends[index]
            del starts[index], ends[index]
        elif joins_left:
            ends[index - 1] = version
        elif joins_right:
            starts[index] = version
        else:
            starts.insert(index, version)
            ends.insert(index, version)

    def __contains__(self, version: object) -> bool:
        if not isinstance(version, int):
            return False
        index = bisect.bisect_right(self._starts, version)
        return bool(index) and self._ends[index - 1] >= version

    def skip_from(self, after: int) -> int:
        """Return the highest version reachable from ``after`` through versions in the set (``after`` if none).

        Every version in ``(after, result]`` is in the set: a watermark may move there without reading them.
        """
        index = bisect.bisect_right(self._starts, after + 1)
        if index and self._ends[index - 1] > after:
            return self._ends[index - 1]
        return after
