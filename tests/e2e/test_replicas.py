"""Several replicas at once (issue 19): 3 ``forgeflow web``, 3 ``forgeflow worker`` and 2
``forgeflow watcher`` processes on one PostgreSQL and one broker, against the Kubernetes API
emulator and a fake GitHub. A burst of pull requests spread over the web replicas, some posted
twice to different replicas, and one worker SIGKILLed while it holds deliveries: every
Workflow is created once, every job's transitions reach the forge once, no delivery is lost,
every run finishes, and no process logs a deadlock or serialization failure it did not handle.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.replicas import Cluster, Layout, sha_of
from tests.support.services import postgres_database, rabbitmq_broker, redis_broker
from tests.support.stack import free_port

pytestmark = pytest.mark.slow

# Short enough that a SIGKILLed worker's deliveries are taken over within seconds: its leases
# lapse after lease_seconds, the watchers' sweep (every sweep_seconds) sends them again.
SETTINGS = {
    "FORGEFLOW_SWEEP_SECONDS": "1",
    "FORGEFLOW_LEASE_SECONDS": "3",
    "FORGEFLOW_WATCH_TIMEOUT_SECONDS": "10",
}
MORE_EVENTS = 90  # pull requests posted at most after the burst, until the victim holds one


# Eight processes start at once: about 30 s of CPU (mostly imports) before the first delivery,
# 20-40 s of wall time on 2 idle cores, longer on a busy machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("broker", "events"), [("redis", 60), ("rabbitmq", 30)])
def test_replicas_submit_and_report_once(tmp_path: Path, broker: str, events: int) -> None:
    broker_url = redis_broker() if broker == "redis" else rabbitmq_broker()
    with (
        postgres_database() as database,
        Cluster(tmp_path, database, broker_url, Layout(), port=free_port, settings=SETTINGS) as cluster,
    ):
        started = time.monotonic()
        cluster.start()
        print(f"started in {time.monotonic() - started:.1f}s")
        cluster.run_controller(hold=5)
        half = events // 2
        cluster.burst(range(half), threads=6)
        cluster.burst(range(0, half, 5), threads=3, replica=1)  # the same deliveries, to web-1

        victim, killed, held = cluster.workers[0], threading.Event(), [0]

        def kill_when_busy() -> None:  # SIGKILL the victim while it holds a delivery
            deadline = time.monotonic() + 30
            while not held[0] and time.monotonic() < deadline:
                held[0] = cluster.held_by(victim)
                time.sleep(0.01)
            cluster.kill(victim)
            killed.set()

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        cluster.burst(range(half, events), threads=2)
        # a fast worker may have finished each of its deliveries between two looks: more
        # pull requests, a few at a time, until the victim is caught holding one
        more = iter(range(events, events + MORE_EVENTS))
        while not killed.is_set() and (batch := [i for _, i in zip(range(3), more, strict=False)]):
            cluster.burst(batch, threads=3)
        events = len(cluster.posted)
        assert killed.wait(40), "the worker was not killed"
        killed_at = time.monotonic()

        cluster.wait_all_final(timeout=60)
        took_over = time.monotonic() - killed_at
        print(f"all final {took_over:.1f}s after the kill")
        tally = cluster.tally()

    assert held[0], f"{victim.name} was killed holding no delivery"
    assert len(cluster.posted) == events
    assert tally.shas_without_workflow == [], "deliveries lost"
    assert tally.created == events, tally
    assert tally.created_twice == []
    assert tally.duplicate_statuses == [], "transitions reported more than once"
    assert tally.missing == {}, "transitions never reported"
    assert tally.deliveries == {"done": events}, tally.deliveries
    assert tally.runs == {"succeeded": events}, tally.runs
    # only the killed worker's deliveries went to a second worker (none while its holder lived)
    assert tally.taken_again <= cluster.layout.worker_concurrency, tally
    assert tally.troubles == [], "\n".join(tally.troubles)
    assert took_over < 60
    assert set(cluster.posted) == {sha_of(i) for i in range(events)}
