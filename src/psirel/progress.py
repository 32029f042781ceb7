"""The progress protocol library code reports to (the CLI's rich bars implement it)."""

from __future__ import annotations


class Silent:
    """A progress sink that shows nothing: ``stage(name, total)``, ``advance(n, **fields)``,
    ``epoch(variant, record)``."""

    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, n: int = 1, **fields) -> None:
        pass

    def epoch(self, variant: str, record: dict) -> None:
        pass
