"""A quick fuzz of the webhook endpoint: mutated real payloads, signed, never a 5xx.

The same generator (``tests/support/hostile.py``) runs ``make chaos`` with 10,000 requests
against gunicorn; here a few hundred, in-process, with a fixed seed. A failure prints the seed,
forge and fixture, so it can be replayed.
"""

from __future__ import annotations

import random

import pytest

from service.context import build_context
from service.web.app import create_app
from tests.support.hostile import FORGES, Mutator, corpus, encoding_attacks, headers_for

SECRET = "fuzz-secret"
SEED = 18
PER_FORGE = 60


@pytest.fixture(scope="module")
def samples():
    found = corpus()
    if not found:
        pytest.skip("../shared/fixtures is not here")
    return found


@pytest.fixture
def client(make_settings):
    secrets = {f"{forge}_webhook_secret": SECRET for forge in FORGES}
    ctx = build_context(make_settings(max_body_bytes=2 * 1024 * 1024, **secrets))
    yield create_app(ctx).test_client()
    ctx.close()


def post(client, forge: str, body: bytes, event: str, content_type: str = "application/json"):
    headers = headers_for(forge, body, event, SECRET)
    headers["Content-Type"] = content_type
    return client.post(f"/api/webhooks/{forge}", data=body, headers=headers)


def test_mutated_payloads_of_every_forge_are_never_a_5xx(client, samples):
    mutator = Mutator(SEED)
    rng = random.Random(SEED)
    seen: dict[int, int] = {}
    for forge in FORGES:
        own = [s for s in samples if s.forge == forge]
        for i in range(PER_FORGE):
            sample = rng.choice(own)
            body = mutator.body(sample.payload)
            response = post(client, forge, body, sample.event)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (SEED, forge, sample.name, i, response.get_data()[:300])
            assert response.is_json and ("error" in response.json or response.status_code < 300)
    assert seen.get(202, 0) and seen.get(400, 0), seen  # both kinds were exercised


def test_bodies_that_are_not_utf8_json_are_4xx(client, samples):
    rng = random.Random(SEED)
    for forge in FORGES:
        sample = next(s for s in samples if s.forge == forge)
        for what, body, content_type in encoding_attacks(rng, sample):
            response = post(client, forge, body, sample.event, content_type)
            assert 400 <= response.status_code < 500 or response.status_code in (200, 202), (forge, what)
            assert response.status_code < 500, (forge, what, response.get_data()[:300])
