"""Every page that lists annotators, units or assignments is paged: page 2 shows the rest, a bad ?page= is no 500.

PER_PAGE is shrunk to 2 so that a handful of rows spans pages; the rows are told apart by links that name them.
"""
import re

import pytest
from django.test import Client

import annotate_site.paging
from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def world(monkeypatch, requester):
    monkeypatch.setattr(annotate_site.paging, "PER_PAGE", 2)
    job = make_job(layers={"conv3": 5}, exemplars_per_unit=1)
    hits = make_hits(job, assignments=1)
    workers = [make_user(f"worker{i}", qualified=True) for i in range(5)]
    for hit, worker in zip(hits, workers):
        answer(hit, worker, "dog", "object")
    client = Client()
    client.force_login(requester)
    return {"client": client, "layer": job.layer_set.get(), "hits": hits, "workers": workers}


def pages(world) -> dict[tuple[str, str], str]:
    """(url, page parameter) -> the pattern that names one listed row."""
    layer = world["layer"].pk
    return {(url, param): pattern for url, param, pattern in [
        ("/crowd/review/", "page", r'<tr><td><a href="/crowd/review/hits/(\d+)/"'),
        ("/crowd/review/", "waiting_page", r'name="assignment_ids" value="(\d+)"'),
    ]} | {(url, "page"): pattern for url, pattern in {
        "/crowd/review/annotators/": r'action="/crowd/review/annotators/(\d+)/"',
        "/results/annotators/": r"<td>(worker\d)</td>",
        f"/results/layers/{layer}/": r'href="/results/units/(\d+)/"',
        f"/layers/{layer}/": r'class="unit-row[^"]*" id="unit-(\d+)"',
    }.items()}


def rows(world, url: str, param: str, pattern: str, page) -> list[str]:
    response = world["client"].get(url, {param: page})
    assert response.status_code == 200, (url, page, response.status_code)
    return sorted(set(re.findall(pattern, response.content.decode())))


def test_page_links_walk_through_every_row_once(world):
    for (url, param), pattern in pages(world).items():
        seen = [rows(world, url, param, pattern, n) for n in (1, 2, 3)]
        assert all(0 < len(s) <= 2 for s in seen), (url, seen)
        everything = [r for s in seen for r in s]
        assert len(everything) == len(set(everything)) == 5, (url, seen)
        first = world["client"].get(url).content.decode()
        assert "page 1 of 3" in first and f"{param}=2" in first, url


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "999", "1e3", "", "2;DROP"])
def test_a_bad_page_number_shows_a_page_not_a_500(world, bad):
    for (url, param), pattern in pages(world).items():
        assert rows(world, url, param, pattern, bad), (url, bad)


def test_the_sort_survives_paging(world):
    layer = world["layer"].pk
    body = world["client"].get(f"/layers/{layer}/", {"sort": "score"}).content.decode()
    assert "sort=score&amp;page=2" in body
