import threading
import time

import pytest

from curation.prefetch import prefetch


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(100)), maxsize=3)) == list(range(100))


def test_prefetch_raises_the_producer_error_where_it_happened():
    def items():
        yield 1
        yield 2
        raise ValueError("corrupt frame")

    got = []
    with pytest.raises(ValueError, match="corrupt frame"):
        for x in prefetch(items(), maxsize=8):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_runs_ahead_but_no_further_than_maxsize():
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    it = prefetch(items(), maxsize=4)
    assert next(it) == 0
    time.sleep(0.3)  # the producer fills the queue while the consumer works
    assert 4 <= len(produced) <= 6  # 1 consumed + 4 queued + 1 waiting to be put
    it.close()  # an early stop releases the producer thread
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())
