"""Progress bars (tqdm) on stderr, off when not a terminal or when a JSON report is wanted."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(desc: str, *, total: int | None = None, unit: str = "it",
                 enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable; a real tqdm bar when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        def _noop(n: int = 1) -> None:
            return None

        yield _noop
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False) as bar:
        yield bar.update
