"""The permission matrix: every page of the URL conf and every operation of /api/schema/, tried by
every persona with the object ids of project B.

Generated, not hand-listed: the URL patterns are walked from the resolver and the API operations
read from the served schema, and each must have an entry in PAGES or API below, so a new endpoint
without an entry fails `test_every_endpoint_has_an_entry`. An entry says what the ids in the URL
(and, for forms and creating calls, in the body) are: B's job, layer, unit, ...

Personas: anonymous, the annotator holding B's work ("in the pool"), an annotator outside it,
the owner, requester, reviewer and viewer of project A, the requester of project B, a site admin.
The rule checked for every entry of a project's object:

- A's members get 404 (or 405 where the view does not take the method): B's ids reveal nothing;
  so does everyone signed in but its annotator on the annotators' own work (an assignment, a skip),
  whichever project they belong to;
- annotators and anonymous users are refused (302 to the sign-in page, 401, 403, 404 or 405);
- nothing of B changes, whoever of them sent whatever (B's rows are compared before and after);
- lists read by A's members show none of B's names and none of B's ids;
- B's requester and the admin do find B's objects (GET answers neither 403 nor 404), so the ids
  used are real ones.

The number of requests is printed (`-s`): it is the matrix size given in the closing note.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tests.factories import make_hits, make_job, make_project, make_user
from units.crowd.models import (
    Annotation, Assignment, ChannelSettings, Hit, HitBatch, InviteCode, Qualification, QualificationAttempt,
    QualificationSettings, Skip,
)
from units.dissection.models import DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit
from units.projects.models import Invitation, Membership, Pool, Project
from units.results.models import AggregationRun, ExportJob, SynonymEntry, UnitAggregate, UnitVerification

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]

MARK = "bravosecret"  # in every name of project B: no page or list of A's members may show it

A_MEMBERS = ["owner_a", "requester_a", "reviewer_a", "viewer_a"]
OUTSIDERS = ["anonymous", "annotator_in", "annotator_out"]
B_SIDE = ["requester_b", "admin"]
PERSONAS = [*OUTSIDERS, *A_MEMBERS, *B_SIDE]


@dataclass(frozen=True)
class Rule:
    """What an endpoint's ids are (`ids`: URL kwarg -> B's object), what its body names (`body`),
    and its kind: "project" (a project's object or data), "own" (the holding annotator's own work),
    "site" (site-wide: sanity reports, the crowd's sign-up and annotators), "public" (every user),
    "crowd" (the claim: B's batches are open to every qualified annotator, so a claim by an
    annotator is B's business as intended; the crowd's tests cover it)."""

    kind: str = "project"
    ids: dict = field(default_factory=dict)
    body: dict = field(default_factory=dict)
    list_model: str = ""  # API lists: which of B's ids must not come back
    holder_may: bool = False  # the annotator holding B's HIT may read it (its pictures)


P = Rule
PAGES: dict[str, Rule] = {
    "home": Rule("public"),
    "healthz": Rule("public"),
    "api-schema": Rule("public"),
    "api-docs": Rule("public"),
    "login": Rule("public"), "logout": Rule("public"), "signup": Rule("public"),
    "password_change": Rule("public"), "password_change_done": Rule("public"),
    "password_reset": Rule("public"), "password_reset_done": Rule("public"),
    "password_reset_confirm": Rule("public", ids={"uidb64": "unknown_token", "token": "unknown_token"}),
    "password_reset_complete": Rule("public"),
    "password_reset_hidden": Rule("public", ids={"route": "password_reset"}),
    "dissection:job_list": P(), "dissection:network_list": P(), "dissection:dataset_list": P(),
    "dissection:network_new": P(), "dissection:dataset_new": P(),
    "dissection:job_new": P(body={"network": "network", "dataset": "dataset", "layers": "conv3"}),
    "dissection:job": P(ids={"job_id": "job"}),
    "dissection:job_status": P(ids={"job_id": "job"}),
    "dissection:job_run": P(ids={"job_id": "job"}),
    "dissection:job_edit": P(ids={"job_id": "job"}),
    "dissection:job_delete": P(ids={"job_id": "pending_job"}),
    "dissection:paint": P(ids={"job_id": "job"}),
    "dissection:layer": P(ids={"layer_id": "layer"}),
    "dissection:unit": P(ids={"unit_id": "unit"}),
    "publish": P(body={"layers": "layer", "assignments_per_hit": 1, "reward": "0.05", "lifetime_hours": 1,
                       "assignment_minutes": 5, "auto_approval_hours": 1, "exemplars_shown": 2, "sentinels": 0}),
    "crowd:home": Rule("public"), "crowd:instructions": Rule("public"), "crowd:qualification": Rule("public"),
    # A project's test is shown to annotators it offers work (B's pool: the annotator holding B's HIT)
    # and to its members; to anyone else the project does not exist.
    "crowd:qualification_test": P(ids={"project_id": "project"}, holder_may=True),
    "crowd:next": Rule("crowd"),
    "crowd:work": Rule("own", ids={"pk": "assignment"}),
    "crowd:return": Rule("own", ids={"pk": "assignment"}),
    "crowd:skip": Rule("own", ids={"pk": "assignment"}),
    "crowd:undo_skip": Rule("own", ids={"pk": "skip"}),
    "crowd:retake": Rule("own", ids={"pk": "assignment"}),
    "crowd:extend": Rule("own", ids={"pk": "assignment"}),
    "crowd:review_list": P(),
    "crowd:review_hit": P(ids={"pk": "hit"}),
    "crowd:review_decide": P(body={"assignment_ids": "assignment", "action": "reject", "feedback": "x"}),
    "crowd:gold": P(body={"unit_id": "unit", "gold_word": "dog", "gold_category": "object"}),
    # MTurk's framed HIT page: an HIT of an MTurk batch only, with MTurk's hitId; anyone else finds nothing.
    "crowd:mturk_hit": Rule("public", ids={"pk": "hit"}),
    "crowd:batch_expire": P(ids={"pk": "batch"}),
    # A Prolific study's page: a batch on the Prolific channel only; B's batch (site) is no study for anyone.
    "crowd:prolific_study": Rule("public", ids={"batch_id": "batch"}),
    "crowd:channels": P(ids={"project_id": "project"}, body={"budget_cap": "1", "mturk_access_key_id": "AKIASNEAKY",
                                                               "prolific_hits_per_participant": 5}),
    "crowd:annotators": Rule("site"),
    "crowd:annotator_action": Rule("site", ids={"pk": "annotator_out"}, body={"action": "unflag"}),
    "crowd:settings": Rule("site"),
    "crowd:invite_create": Rule("site"),
    "crowd:invite_deactivate": Rule("site", ids={"pk": "invite"}),
    "results:overview": P(), "results:annotators": P(), "results:exports": P(body={"kind": "units_csv",
                                                                                   "layer": "layer"}),
    "results:imports": P(body={"kind": "tally", "layer": "layer"}),
    "results:layer": P(ids={"layer_id": "layer"}),
    "results:aggregate": P(ids={"layer_id": "layer"}),
    "results:unit": P(ids={"unit_id": "unit"}),
    "results:synonyms": P(ids={"dataset_id": "dataset"}, body={"word": "doggo", "target": "dog"}),
    "results:synonym_delete": P(ids={"entry_id": "synonym"}),
    "results:export_status": P(ids={"export_id": "export"}),
    "results:export_download": P(ids={"export_id": "export"}),
    "sanity:list": Rule("site"),
    "sanity:detail": Rule("site", ids={"pk": "missing"}),
    "sanity:publish": Rule("site", ids={"pk": "missing"}),
    "sanity:file": Rule("site", ids={"pk": "missing", "path": "report.html"}),
    "projects:list": P(),
    "projects:detail": P(ids={"project_id": "project"}),
    "projects:switch": P(ids={"project_id": "project"}),
    "projects:member_add": P(ids={"project_id": "project"}, body={"who": "annotator_out", "role": "owner"}),
    "projects:member_role": P(ids={"project_id": "project", "user_id": "requester_b"}, body={"role": "viewer"}),
    "projects:member_remove": P(ids={"project_id": "project", "user_id": "requester_b"}),
    "projects:delete": P(ids={"project_id": "project"}, body={"confirm_name": "project_name"}),
    "projects:activity": P(ids={"project_id": "project"}),
    "projects:pool_new": P(ids={"project_id": "project"}, body={"name": "sneaky"}),
    "projects:pool_member": P(ids={"project_id": "project", "pool_id": "pool"}, body={"who": "owner_a"}),
    # Like an invitation, a pool's link is a capability (its holder joins): an unknown token finds nothing.
    "projects:pool_join": Rule("site", ids={"token": "unknown_token"}),
    # An invitation link is a capability (its holder joins): an unknown token finds nothing for anyone.
    "projects:invitation": Rule("site", ids={"token": "unknown_token"}),
    "picture": P(ids={"public_id": "exemplar_public_id"}, holder_may=True),
    "picture_plain": P(ids={"public_id": "exemplar_public_id"}, holder_may=True),
    "media": P(ids={"path": "export_file"}),
}
# Pages served by other packages, not ours to scope: the admin (site admins only) and static files.
FOREIGN_PREFIXES = ("admin/", "static/")

API: dict[str, Rule] = {
    "/api/v1/auth/token/": Rule("public"),
    "/api/v1/auth/logout/": Rule("public"),
    "/api/v1/auth/logoutall/": Rule("public"),
    "/api/v1/networks/": P(
        body={"project": "project", "name": "x", "architecture": "mixturenet"}, list_model="network"
    ),
    "/api/v1/networks/{id}/": P(ids={"id": "network"}),
    "/api/v1/networks/{id}/layers/": P(ids={"id": "network"}),
    # An architecture's layers before registering: no project object; those who may register (403 for others).
    "/api/v1/architectures/layers/": P(),
    "/api/v1/datasets/": P(
        body={"project": "project", "name": "x", "kind": "mixture", "path": "x"}, list_model="dataset"
    ),
    "/api/v1/datasets/{id}/": P(ids={"id": "dataset"}),
    "/api/v1/jobs/": P(body={"network": "network", "dataset": "dataset", "layers": ["conv3"]}, list_model="job"),
    "/api/v1/jobs/{id}/": P(ids={"id": "job"}),
    "/api/v1/jobs/{id}/start/": P(ids={"id": "pending_job"}),
    "/api/v1/jobs/{id}/status/": P(ids={"id": "job"}),
    "/api/v1/jobs/{job_id}/paint/": P(ids={"job_id": "job"}),
    "/api/v1/layers/": P(list_model="layer"),
    "/api/v1/layers/{id}/": P(ids={"id": "layer"}),
    "/api/v1/units/": P(list_model="unit"),
    "/api/v1/units/{id}/": P(ids={"id": "unit"}),
    "/api/v1/exemplars/": P(list_model="exemplar"),
    "/api/v1/exemplars/{id}/": P(ids={"id": "exemplar"}),
    "/api/v1/hit-batches/": P(body={"layers": ["layer"]}, list_model="batch"),
    "/api/v1/hit-batches/{id}/": P(ids={"id": "batch"}),
    "/api/v1/hit-batches/verify/": P(body={"layers": ["layer"], "sources": ["iou"]}),
    "/api/v1/hits/": P(list_model="hit"),
    "/api/v1/hits/{id}/": P(ids={"id": "hit"}),
    "/api/v1/assignments/": P(list_model="assignment"),
    "/api/v1/assignments/{id}/": Rule("own", ids={"id": "assignment"}),
    "/api/v1/assignments/next/": Rule("crowd"),
    "/api/v1/assignments/{id}/submit/": Rule("own", ids={"id": "assignment"}),
    "/api/v1/assignments/{id}/return/": Rule("own", ids={"id": "assignment"}),
    "/api/v1/assignments/{id}/skip/": Rule("own", ids={"id": "assignment"}),
    "/api/v1/assignments/{id}/verdict/": Rule("own", ids={"id": "assignment"}),
    "/api/v1/annotations/": P(list_model="annotation"),
    "/api/v1/annotations/{id}/": Rule("own", ids={"id": "annotation"}),
    "/api/v1/labels/": P(list_model="label"),
    "/api/v1/labels/{id}/": P(ids={"id": "label"}),
    "/api/v1/aggregation-runs/": P(body={"layer": "layer"}, list_model="run"),
    "/api/v1/aggregation-runs/{id}/": P(ids={"id": "run"}),
    "/api/v1/comparisons/": P(list_model="layer"),
    "/api/v1/comparisons/{id}/": P(ids={"id": "layer"}),
    "/api/v1/exports/": P(body={"kind": "units_csv", "layer": "layer"}, list_model="export"),
    "/api/v1/exports/{id}/": P(ids={"id": "export"}),
    "/api/v1/exports/{id}/download/": P(ids={"id": "export"}),
    "/api/v1/synonyms/": P(body={"dataset": "dataset", "word": "doggo", "target": "dog"}, list_model="synonym"),
    "/api/v1/synonyms/{id}/": P(ids={"id": "synonym"}),
    "/api/v1/verifications/": P(list_model="verification"),
    "/api/v1/verifications/{id}/": P(ids={"id": "verification"}),
    "/api/v1/verifications/precision/": P(body={"layer": "layer"}),
}


# -- the world ---------------------------------------------------------------------------------------


@pytest.fixture
def world(media_root):
    now = timezone.now()
    users = {name: make_user(name, qualified=name.startswith("annotator")) for name in
             ["annotator_in", "annotator_out", "owner_a", "requester_a", "reviewer_a", "viewer_a", "requester_b",
              "owner_b"]}
    users["admin"] = make_user("admin", admin=True)
    project_a = make_project("Alpha", owner=users["owner_a"], members={
        users["requester_a"]: "requester", users["reviewer_a"]: "reviewer", users["viewer_a"]: "viewer"})
    project_b = make_project(f"{MARK}-project", owner=users["owner_b"], members={users["requester_b"]: "requester"})
    make_hits(make_job(project=project_a))
    job = make_job(project=project_b, layers={"conv3": 3}, exemplars_per_unit=2, write_pictures=True)
    Network.objects.filter(pk=job.network_id).update(name=f"{MARK}-net")
    ProbeDataset.objects.filter(pk=job.dataset_id).update(name=f"{MARK}-data")
    pending = DissectionJob.objects.create(project=project_b, network=job.network, dataset=job.dataset,
                                           layers=["conv3"], status=DissectionJob.Status.FAILED)
    hits = make_hits(job)
    HitBatch.objects.filter(pk=hits[0].batch_id).update(name=f"{MARK}-batch")
    layer = Layer.objects.get(job=job)
    unit = Unit.objects.filter(layer=layer).first()
    assignment = Assignment.objects.create(hit=hits[0], worker=users["annotator_in"], status="submitted",
                                           accepted_at=now, deadline=now + timedelta(hours=1), submitted_at=now)
    annotation = Annotation.objects.create(assignment=assignment, word=f"{MARK}word", category="object")
    skip = Skip.objects.create(hit=hits[1], worker=users["annotator_in"])
    export_file = "exports/bravo.csv"
    (media_root / "exports").mkdir()
    (media_root / export_file).write_text(MARK)
    export = ExportJob.objects.create(project=project_b, kind="units_csv", layer=layer, status="succeeded",
                                      file=export_file)
    run = AggregationRun.objects.create(project=project_b, layer=layer, method="m", started_at=now, status="succeeded")
    label = UnitAggregate.objects.create(unit=unit, run=run, crowd_word=f"{MARK}word")
    verification = UnitVerification.objects.create(project=project_b, unit=unit, source="iou", label=f"{MARK}label")
    synonym = SynonymEntry.objects.create(project=project_b, dataset=job.dataset, word=f"{MARK}w", target="dog")
    Invitation.objects.create(project=project_b, email="someone@example.org", role="viewer")
    pool = Pool.objects.create(project=project_b, name=f"{MARK}-pool")
    pool.members.add(users["annotator_in"])
    HitBatch.objects.filter(pk=hits[0].batch_id).update(pool=pool)
    invite = InviteCode.objects.create(code="code-1")
    # B's gold units and test settings: a test page reached from A would start an attempt at B's test.
    Unit.objects.filter(layer=layer).update(is_gold=True, gold_word="dog", gold_category="object")
    QualificationSettings.objects.create(project=project_b, size=2)
    b = {
        "project": project_b.pk, "project_name": project_b.name, "job": job.pk, "pending_job": pending.pk,
        "network": job.network_id, "dataset": job.dataset_id, "layer": layer.pk, "unit": unit.pk,
        "exemplar": Exemplar.objects.filter(unit=unit).first().pk,
        "exemplar_public_id": Exemplar.objects.filter(unit=unit).first().public_id,
        "batch": hits[0].batch_id, "hit": hits[0].pk, "assignment": assignment.pk, "annotation": annotation.pk,
        "skip": skip.pk, "export": export.pk, "export_file": export_file, "run": run.pk, "label": label.pk,
        "verification": verification.pk, "synonym": synonym.pk, "requester_b": users["requester_b"].pk,
        "annotator_out": users["annotator_out"].pk, "invite": invite.pk, "missing": 999999,
        "unknown_token": "no-such-token", "pool": pool.pk,
    }
    return users, project_b, b


def snapshot(project: Project) -> dict:
    """Everything of project B a request could change."""
    rows = {"project": list(Project.objects.filter(pk=project.pk).values()),
            "members": sorted(Membership.objects.filter(project=project).values_list("user_id", "role"))}
    for model, path in [(DissectionJob, "project"), (Network, "project"), (ProbeDataset, "project"),
                        (HitBatch, "project"), (ExportJob, "project"), (SynonymEntry, "project"),
                        (AggregationRun, "project"), (UnitVerification, "project"), (Layer, "job__project"),
                        (Unit, "layer__job__project"), (Assignment, "hit__batch__project"),
                        (Annotation, "assignment__hit__batch__project"), (Skip, "hit__batch__project")]:
        rows[model.__name__] = sorted(model.objects.filter(**{path: project}).values_list("pk", flat=True))
    rows["jobs"] = sorted(DissectionJob.objects.filter(project=project).values_list("pk", "status"))
    rows["assignments"] = sorted(Assignment.objects.filter(hit__batch__project=project).values_list("pk", "status"))
    rows["pool_members"] = sorted(Pool.members.through.objects.filter(pool__project=project).values_list(
        "pool_id", "user_id"))
    rows["pools"] = sorted(Pool.objects.filter(project=project).values_list("pk", "name"))
    rows["gold"] = sorted(Unit.objects.filter(layer__job__project=project, is_gold=True).values_list(
        "pk", "gold_word", "gold_category"))
    rows["qualified"] = sorted(Qualification.objects.filter(project=project).values_list("user_id", flat=True))
    rows["attempts"] = sorted(QualificationAttempt.objects.filter(project=project).values_list("pk", "finished_at"))
    rows["qualification_settings"] = list(QualificationSettings.objects.filter(project=project).values())
    rows["channels"] = list(ChannelSettings.objects.filter(project=project).values())
    rows["hit_expiry"] = sorted(Hit.objects.filter(batch__project=project).values_list("pk", "expires_at"))
    return rows


# -- what the URL conf and the schema list -------------------------------------------------------------


def page_patterns() -> dict[str, str]:
    """name -> route of every URL pattern outside the API, the admin and static files."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: str | None) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if route.startswith(FOREIGN_PREFIXES) or route.startswith("api/") and p.name not in PAGES:
                    continue
                found[f"{namespace}:{p.name}" if namespace else p.name] = route

    walk(get_resolver().url_patterns, "", None)
    return found


def api_operations(client: Client) -> dict[str, list[str]]:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return {path: [m for m in ops if m in ("get", "post", "put", "patch", "delete")]
            for path, ops in response.json()["paths"].items()}


def test_every_endpoint_has_an_entry(client, admin):
    client.force_login(admin)
    assert set(page_patterns()) - set(PAGES) == set(), "pages without an entry in the permission matrix"
    assert set(api_operations(client)) - set(API) == set(), "API paths without an entry in the permission matrix"


# -- the matrix -------------------------------------------------------------------------------------------


def _url(route: str, ids: dict, b: dict) -> str:
    values = {kwarg: b.get(key, key) for kwarg, key in ids.items()}

    def fill(match: re.Match) -> str:
        name = match.group("name")
        return str(values[name])

    route = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, route)  # re_path() routes
    route = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, route)  # path() routes
    route = route.lstrip("^").rstrip("$")
    route = re.sub(r"\{(?P<name>\w+)\}", fill, route)  # schema paths
    return route if route.startswith("/") else "/" + route


def _body(rule: Rule, b: dict) -> dict:
    out = {}
    for key, value in rule.body.items():
        if isinstance(value, list):
            out[key] = [b.get(v, v) for v in value]
        else:
            out[key] = b.get(value, value) if isinstance(value, str) else value
    return out


def _client(persona: str, users: dict) -> Client:
    client = Client()
    if persona != "anonymous":
        client.force_login(users[persona])
    return client


REFUSED_OUTSIDERS = {302, 401, 403, 404, 405}
NOT_FOUND_FOR_MEMBERS = {404, 405}
NOT_YOURS = {404, 405}


def test_nothing_of_project_b_is_readable_or_writable_from_project_a(world, capsys):
    users, project_b, b = world
    admin_client = _client("admin", users)
    api_ops = api_operations(admin_client)
    calls: list[tuple] = []  # (persona, method, url, rule, is_api)
    for name, route in page_patterns().items():
        rule = PAGES[name]
        url = _url(route, rule.ids, b)
        for method in ("get", "post"):
            calls.append((method, url, rule, False))
    for path, methods in api_ops.items():
        rule = API[path]
        url = _url(path, rule.ids, b)
        for method in methods:
            calls.append((method, url, rule, True))

    before = snapshot(project_b)
    wrong, size = [], 0
    for persona in [*OUTSIDERS, *A_MEMBERS]:
        client = _client(persona, users)
        for method, url, rule, is_api in calls:
            if rule.kind in ("public", "site") and method != "get" or rule.kind == "crowd":
                continue  # site-wide and public writes touch no project: the unit tests cover them
            if (rule.kind == "own" or rule.holder_may) and persona == "annotator_in":
                continue  # their own work: the crowd's tests cover it
            body = _body(rule, b)
            if is_api:
                response = getattr(client, method)(url, body, content_type="application/json") \
                    if method != "get" else client.get(url, body if url.endswith("precision/") else None)
            else:
                response = client.get(url) if method == "get" else client.post(url, body)
            size += 1
            status = response.status_code
            if status >= 500:
                wrong.append((persona, method, url, status, "server error"))
                continue
            text = b"" if response.streaming else response.content
            if rule.kind in ("project", "own") and rule.ids:
                if rule.kind == "own":
                    expected = REFUSED_OUTSIDERS if persona == "anonymous" else NOT_YOURS
                else:
                    expected = NOT_FOUND_FOR_MEMBERS if persona in A_MEMBERS else REFUSED_OUTSIDERS
                if status not in expected:
                    wrong.append((persona, method, url, status, sorted(expected)))
            elif rule.kind == "project" and persona in A_MEMBERS:
                if MARK.encode() in text:
                    wrong.append((persona, method, url, status, "shows project B's names"))
                if is_api and method == "get" and rule.list_model and status == 200:
                    ids = {row.get("id") for row in response.json().get("results", [])}
                    if b[rule.list_model] in ids:
                        wrong.append((persona, method, url, status, f"lists B's {rule.list_model}"))
                if is_api and method != "get" and status in (200, 201, 202, 204):
                    wrong.append((persona, method, url, status, "accepted B's ids"))
            elif rule.kind == "project" and persona in OUTSIDERS and status not in REFUSED_OUTSIDERS | {200}:
                wrong.append((persona, method, url, status, "outsider"))
            elif rule.kind == "project" and persona in ("anonymous", "annotator_out") and MARK.encode() in text:
                wrong.append((persona, method, url, status, "shows project B's names"))
    assert snapshot(project_b) == before, "a request from outside project B changed it"

    # B's own requester and the admin find every object used above: the ids are real (B's
    # requester is refused the owners' pages with a 403: they know the project).
    for persona in B_SIDE:
        client = _client(persona, users)
        for method, url, rule, _is_api in calls:
            if method != "get" or rule.kind != "project" or not rule.ids:
                continue
            size += 1
            status = client.get(url).status_code
            if status == 404 or status >= 500 or status == 403 and persona == "admin":
                wrong.append((persona, method, url, status, "B's side cannot read B's object"))
    with capsys.disabled():
        print(f"\npermission matrix: {len(page_patterns())} pages, {len(api_ops)} API paths, "
              f"{len(PERSONAS)} personas, {size} requests")
    assert wrong == [], "\n".join(map(str, wrong))
