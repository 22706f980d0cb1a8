"""A handler's imports without the cyclic garbage collector running over them.

Importing a handler creates some 80,000 objects that live as long as the Lambda environment: modules,
classes, functions, botocore's service models. While they pile up, the collector runs again and again
and each pass walks the survivors, which it can never free: about a tenth of the init on python3.13
(`make bench`). `gc.freeze` afterwards moves them where the collector never looks, so the full
collections during invocations skip them too (one full pass over them takes about 50 ms).

The price: the few hundred objects that are already garbage when the imports end (about 400, from
import machinery) are frozen with the rest and never freed, once per environment.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Import a handler's code inside this; the collector resumes as it was, with what was built frozen."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
