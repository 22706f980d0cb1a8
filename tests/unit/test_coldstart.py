import gc
from collections.abc import Iterator

import pytest

from smsgw.coldstart import collector_paused


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was_enabled else gc.disable)()


def test_the_collector_is_off_during_the_imports_and_on_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_the_imports_built_is_frozen_out_of_later_collections() -> None:
    with collector_paused():
        built = [[] for _ in range(100)]
    # Frozen objects sit in the permanent generation, which get_objects() does not list.
    assert not any(obj is built for obj in gc.get_objects())
    gc.unfreeze()
    assert any(obj is built for obj in gc.get_objects())


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_a_failing_import_still_resumes_the_collector() -> None:
    gc.enable()
    with pytest.raises(ImportError), collector_paused():
        import smsgw.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()
