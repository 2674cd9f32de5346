"""The micro-batcher on its own: batches form under concurrency, every request gets its own result
or its own error, nothing hangs when the server stops."""

import asyncio
import time

import pytest

from ragpress.serve.batcher import Busy, MicroBatcher


class Recorder:
    """A run_batch that answers ``item -> "r:" + item``, fails a batch holding "boom", and records batch sizes."""

    def __init__(self, seconds: float = 0.0):
        self.sizes, self.seconds = [], seconds

    def __call__(self, items):
        self.sizes.append(len(items))
        time.sleep(self.seconds)
        if "boom" in items:
            raise ValueError("boom is not a question")
        return [f"r:{item}" for item in items]


async def submit_all(batcher, items, stop=True):
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(item) for item in items), return_exceptions=True)
    finally:
        if stop:
            await batcher.stop()


def test_concurrent_requests_share_batches_and_each_gets_its_own_result():
    run = Recorder(seconds=0.02)
    items = [f"q{i}" for i in range(20)]
    served = asyncio.run(submit_all(MicroBatcher(run, max_batch=8, max_wait_ms=50), items))
    assert [s.result for s in served] == [f"r:{item}" for item in items]
    assert sum(run.sizes) == 20 and max(run.sizes) <= 8 and len(run.sizes) < 20
    assert all(s.batch_size in run.sizes and s.queued_s >= 0 for s in served)


def test_a_failing_request_gets_its_own_error_and_the_others_their_results():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_wait_ms=50)
    served = asyncio.run(submit_all(batcher, ["a", "boom", "c"]))
    assert served[0].result == "r:a" and served[2].result == "r:c"
    assert isinstance(served[1], ValueError) and "boom" in str(served[1])
    assert run.sizes == [3, 1, 1, 1] and batcher.batches == 4 and batcher.requests == 3
    assert served[0].batch_size == 1  # it was answered by its own run


def test_a_batch_with_the_wrong_number_of_results_answers_no_one_with_anothers_result():
    drops_last = lambda items: [f"r:{item}" for item in items][: max(1, len(items) - 1)]  # noqa: E731
    served = asyncio.run(submit_all(MicroBatcher(drops_last, max_batch=4, max_wait_ms=50), ["a", "b"]))
    assert [s.result for s in served] == ["r:a", "r:b"]  # rerun one by one, not zipped with a short list
    served = asyncio.run(submit_all(MicroBatcher(lambda items: [], max_batch=4, max_wait_ms=50), ["a", "b"]))
    assert all(isinstance(s, RuntimeError) and "none can be matched" in str(s) for s in served)


def test_a_full_queue_answers_busy_at_once():
    served = asyncio.run(submit_all(MicroBatcher(Recorder(), max_queue=1), ["a", "b"]))
    assert served[0].result == "r:a" and isinstance(served[1], Busy)


@pytest.mark.parametrize(("max_batch", "max_wait_ms"), [(1, 0), (4, 5000)])
def test_stopping_answers_waiting_requests_instead_of_leaving_them_hanging(max_batch, max_wait_ms):
    """Stopped while "a" runs and "b", "c" wait in the queue, or while all three are gathered for a batch."""
    async def scenario():
        batcher = MicroBatcher(Recorder(seconds=0.3), max_batch=max_batch, max_wait_ms=max_wait_ms)
        batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(item)) for item in ("a", "b", "c")]
        await asyncio.sleep(0.05)
        await batcher.stop()
        return await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) and "shutting down" in str(o) for o in outcomes)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Recorder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatcher(Recorder(), max_wait_ms=-1)
