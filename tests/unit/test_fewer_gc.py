from __future__ import annotations

import gc
import threading

from shipper.fewer_gc import GC_YOUNG_THRESHOLD, fewer_collections


def test_fewer_collections_inside_and_as_before_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], GC_YOUNG_THRESHOLD)
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles are still collected
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_nested_block_leaves_the_outer_one_in_force() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        frozen = gc.get_freeze_count()
        with fewer_collections():
            pass
        assert gc.get_freeze_count() == frozen  # not unfrozen by the inner block's end
        assert gc.get_threshold()[0] == max(before[0], GC_YOUNG_THRESHOLD)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_blocks_on_other_threads_share_the_first_ones_settings() -> None:
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with fewer_collections():
        t.start()
        assert inside.wait(10)
    assert gc.get_threshold()[0] == max(before[0], GC_YOUNG_THRESHOLD)  # the other's block goes on
    leave.set()
    t.join(10)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
