"""Who may read what under MEDIA_ROOT: five personas x every kind of file x path tricks.

The rule (annotate_site/media.py): `/media/<path>` is for the members of the file's project (and
admins) only, decided on the normalised path; a requester of another project finds nothing (404);
annotators get exactly the pictures of HITs they hold or held, and of their
qualification tests, through opaque `/pictures/<id>` URLs in which a sentinel looks like any picture.
"""
from __future__ import annotations

import re

import pytest
from django.test import Client
from PIL import Image

from tests.factories import make_hits, make_job, make_user
from units.crowd.models import QualificationAttempt
from units.crowd.selectors import hit_pictures
from units.crowd.services import assignment_claim
from units.dissection.models import Exemplar

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "holder", "other_annotator", "requester", "outsider", "admin"]

# Every kind of file a deployment keeps under MEDIA_ROOT (the list, and then some).
FILES = {
    "tally": "jobs/1/a1/conv1/tally.csv",
    "alignment": "jobs/1/a1/conv1/alignment.csv",
    "topk": "jobs/1/a1/conv1/topk.csv",
    "summary": "jobs/1/a1/conv1/summary.json",
    "exemplar": "jobs/1/a1/conv1/exemplars/unit_0001/rank_00.jpg",
    "sentinel": "jobs/1/a1/conv1/sentinels/unit_0001_00.jpg",
    "strip": "jobs/1/a1/conv1/strips/unit_0001.jpg",
    "shard_state": "jobs/1/shards/0/state.pt",
    "checkpoint": "checkpoints/net.pt",
    "export": "exports/annotations-2026-01-01.csv",
    "sanity_report": "sanity/3/report.html",
}

# (name, how to spell the path, whether it still names the file after normalisation; a leading ".."
# stops at MEDIA_ROOT, as it stops at the site's root in a URL, so it names the same file)
TRICKS = [
    ("plain", lambda p: p, True),
    ("double_slash", lambda p: "/" + p.replace("/", "//", 1), True),
    ("dot_segment", lambda p: "./" + p.replace("/", "/./", 1), True),
    ("dotdot_inside", lambda p: p.split("/")[0] + "/../" + p, True),
    ("percent_encoded", lambda p: p.replace("/", "%2F", 1).replace(".", "%2e"), True),
    ("trailing_slash", lambda p: p + "/", True),
    ("upper_case", lambda p: p.upper(), False),
    ("double_encoded", lambda p: p.replace(".", "%252e"), False),
    ("dotdot_above_root", lambda p: "../" + p, True),
    ("dotdot_above_root_encoded", lambda p: "%2e%2e/%2e%2e/" + p, True),
]


@pytest.fixture
def world(media_root, users):
    """The files on disk, owned by rows of the requester's project: job 1, a network, an export."""
    from units.dissection.models import DissectionJob, Network
    from units.results.models import ExportJob

    job = make_job()
    if job.pk != 1:  # the paths name job 1
        DissectionJob.objects.create(id=1, project=job.project, network=job.network, dataset=job.dataset)
    Network.objects.filter(pk=job.network_id).update(checkpoint=FILES["checkpoint"])
    ExportJob.objects.create(project=job.project, kind="units_csv", file=FILES["export"], status="succeeded")
    for rel in FILES.values():
        path = media_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"secret " + rel.encode())
    (media_root.parent / "outside.txt").write_bytes(b"outside MEDIA_ROOT")
    return media_root


def _client(persona: str, users: dict) -> Client:
    client = Client()
    if persona != "anonymous":
        client.force_login(users[persona])
    return client


@pytest.fixture
def users(db):
    return {
        "holder": make_user("holder", qualified=True), "other_annotator": make_user("other", qualified=True),
        "requester": make_user("req", requester=True), "admin": make_user("root", admin=True),
        "outsider": _outsider(),
    }


def _outsider():
    """A requester of another project."""
    from tests.factories import make_project

    user = make_user("bea-from-elsewhere")
    make_project("elsewhere", owner=user)
    return user


@pytest.mark.parametrize("kind", list(FILES))
def test_media_paths_answer_by_role_on_the_normalised_path(world, users, kind):
    """One test per kind of file; inside, every persona x every spelling (5 x 10 requests)."""
    wrong = []
    for persona in PERSONAS:
        client = _client(persona, users)
        for trick, spell, still_names_the_file in TRICKS:
            url = "/media/" + spell(FILES[kind])
            response = client.get(url)
            if persona in ("requester", "admin"):
                expected = 200 if still_names_the_file else 404
            elif persona == "outsider":
                expected = 404  # another project's file does not exist for them
            else:
                expected = 403  # default deny: annotators never read by path, whatever the spelling
            if response.status_code != expected:
                wrong.append((persona, trick, url, response.status_code, expected))
            elif expected == 200 and b"".join(response.streaming_content) != b"secret " + FILES[kind].encode():
                wrong.append((persona, trick, url, "other bytes", expected))
    assert wrong == []


@pytest.mark.parametrize("persona", ["requester", "admin"])
def test_nothing_outside_media_root_is_served_even_to_requesters(world, users, persona):
    client = _client(persona, users)
    for url in ("/media/../outside.txt", "/media/%2e%2e/outside.txt", "/media/jobs/../../outside.txt",
                "/media//..//outside.txt", "/media/" + str(world.parent / "outside.txt")):
        assert client.get(url).status_code == 404, url


def test_a_link_inside_media_root_cannot_point_outside(world, users):
    (world / "jobs" / "escape.txt").symlink_to(world.parent / "outside.txt")
    assert _client("requester", users).get("/media/jobs/escape.txt").status_code == 404


def test_media_answers_reads_only(world, users):
    client = _client("requester", users)
    assert client.post("/media/" + FILES["tally"]).status_code == 405
    assert client.head("/media/" + FILES["tally"]).status_code == 200


# --- opaque picture URLs --------------------------------------------------------------------------

@pytest.fixture
def hit_world(media_root, users):
    """Two HITs with pictures on disk and one sentinel each; the holder holds the first only."""
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4, write_pictures=True)
    for unit in (u for layer in job.layer_set.all() for u in layer.units.all()):
        rel = f"jobs/{job.pk}/conv3/sentinels/unit_{unit.index + 1:04d}_00.png"
        (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (9, 9, 9)).save(media_root / rel)
        Exemplar.objects.create(unit=unit, kind=Exemplar.Kind.SENTINEL, rank=0, image_index=99,
                                image_name="img99.png", score=0.0, picture=rel, plain=rel)
    hits = make_hits(job, assignments=1)
    for hit in hits:
        hit.batch.sentinels = 1
        hit.batch.save(update_fields=["sentinels"])
    held = assignment_claim(worker=users["holder"]).hit
    other = next(h for h in hits if h.pk != held.pk)
    return held, other


def _pictures(hit):
    return hit_pictures(type(hit).objects.select_related("batch").get(pk=hit.pk))


def test_picture_urls_answer_by_role_and_by_object(hit_world, users):
    held, not_held = hit_world
    expected_held = {"anonymous": 403, "holder": 200, "other_annotator": 404, "requester": 200, "outsider": 404,
                     "admin": 200}
    expected_other = {"anonymous": 403, "holder": 404, "other_annotator": 404, "requester": 200, "outsider": 404,
                      "admin": 200}
    wrong = []
    for persona in PERSONAS:
        client = _client(persona, users)
        for hit, expected in ((held, expected_held[persona]), (not_held, expected_other[persona])):
            for pic in _pictures(hit):
                for url in (pic.picture_url, pic.plain_url, pic.picture_url + "/", pic.picture_url.upper()):
                    status = client.get(url).status_code
                    if url in (pic.picture_url, pic.plain_url):
                        ok = status == expected
                    else:  # other spellings name no picture: never served
                        ok = status in (403, 404)
                    if not ok:
                        wrong.append((persona, url, status, expected))
    assert wrong == []


def test_an_annotator_keeps_the_pictures_of_a_hit_they_returned(hit_world, users, client):
    from units.crowd.services import assignment_return

    held, _ = hit_world
    assignment = held.assignments.get(worker=users["holder"])
    assignment_return(assignment_id=assignment.pk, worker=users["holder"])
    client.force_login(users["holder"])
    assert client.get(_pictures(held)[0].picture_url).status_code == 200


def test_a_units_pictures_beyond_those_shown_in_the_hit_stay_hidden_from_its_holder(hit_world, users, client):
    held, _ = hit_world
    held.exemplars_shown = 4
    held.save(update_fields=["exemplars_shown"])
    client.force_login(users["holder"])
    extra = Exemplar.objects.create(unit=held.unit, rank=50, image_index=1, image_name="x", score=0.0,
                                    picture=Exemplar.objects.filter(unit=held.unit).first().picture)
    # The unit's 51st top picture is not shown in the HIT (exemplars_shown=4), so it is not the holder's.
    assert client.get(_pictures(held)[0].picture_url).status_code == 200
    assert client.get(f"/pictures/{extra.public_id}").status_code == 404


def test_unknown_and_malformed_picture_ids_answer_404(hit_world, users, client):
    client.force_login(users["requester"])
    for url in ("/pictures/AAAAAAAAAAAAAAAAAAAAAA", "/pictures/1", "/pictures/../media/x", "/pictures/%2e%2e"):
        assert client.get(url).status_code == 404, url


def test_a_qualification_attempt_shows_its_gold_pictures_to_that_annotator_only(hit_world, users):
    _, not_held = hit_world
    newbie, outsider = make_user("newbie"), make_user("outsider")
    from django.utils import timezone
    QualificationAttempt.objects.create(user=newbie, project_id=not_held.batch.project_id, unit_ids=[not_held.unit_id],
                                        started_at=timezone.now())
    top = [p for p in _pictures(not_held)
           if Exemplar.objects.get(public_id=p.pk).kind == Exemplar.Kind.TOP]
    sentinel = [p for p in _pictures(not_held) if p not in top]
    assert _client("newbie", {"newbie": newbie}).get(top[0].picture_url).status_code == 200
    # The test shows top pictures only, so the unit's sentinel stays hidden.
    assert _client("newbie", {"newbie": newbie}).get(sentinel[0].picture_url).status_code == 404
    assert _client("outsider", {"outsider": outsider}).get(top[0].picture_url).status_code == 404


# --- sentinels look like any picture -------------------------------------------------------------

URL_SHAPE = re.compile(r"^/pictures/[A-Za-z0-9_-]{22}$")


def test_sentinel_and_exemplar_urls_and_responses_are_indistinguishable(hit_world, users, client):
    held, _ = hit_world
    client.force_login(users["holder"])
    pictures = _pictures(held)
    kinds = {p.pk: Exemplar.objects.get(public_id=p.pk).kind for p in pictures}
    assert sorted(set(kinds.values())) == ["sentinel", "top"]
    # One shape of URL and id for every picture, whatever its kind, rank or unit.
    assert all(URL_SHAPE.match(p.picture_url) and p.plain_url == p.picture_url + "/plain" for p in pictures)
    assert len({len(p.pk) for p in pictures}) == 1
    # The ids are the random public ids, not the pks (which follow creation order: tops, then sentinels).
    exemplars = [Exemplar.objects.get(public_id=p.pk) for p in pictures]
    assert all(p.picture_url == f"/pictures/{ex.public_id}" and p.pk != str(ex.pk)
               for ex, p in zip(exemplars, pictures))
    # The same headers, with the same values, apart from the length of the bytes.
    headers = {}
    for p in pictures:
        response = client.get(p.picture_url)
        assert response.status_code == 200
        headers[p.pk] = {k: v for k, v in response.headers.items() if k != "Content-Length"}
    by_kind = {kind: [headers[pk] for pk, k in kinds.items() if k == kind] for kind in ("top", "sentinel")}
    assert all(h == by_kind["top"][0] for h in by_kind["top"] + by_kind["sentinel"])
    sample = by_kind["sentinel"][0]
    assert "Last-Modified" not in sample
    assert sample["Content-Disposition"] == 'inline; filename="picture.png"'
    assert sample["Cache-Control"] == "private, max-age=3600"


def test_the_api_payload_gives_the_same_opaque_urls(hit_world, users):
    from rest_framework.test import APIClient

    held, _ = hit_world
    api = APIClient()
    api.force_authenticate(users["holder"])
    body = api.post("/api/assignments/next/").json()
    assert [e["id"] for e in body["exemplars"]] == [p.pk for p in _pictures(held)]
    for e in body["exemplars"]:
        assert set(e) == {"id", "picture_url", "plain_url"}
        assert URL_SHAPE.match(e["picture_url"].removeprefix("http://testserver"))
