"""The Python client (client/unitcrowd_client) against the real app on pytest-django's live server."""
import io
import subprocess
import sys
import time

import pytest
import requests
from knox.models import AuthToken

from tests.factories import PASSWORD, lab_project, make_hits, make_job, make_user
from tests.results.helpers import answer
from unitcrowd_client import (
    AuthenticationError, JobFailed, Label, NotFound, PermissionDenied, ServerUnavailable, UnitCrowd, ValidationError,
)
from unitcrowd_client.cli import main as cli_main
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def labelled(transactional_db):
    """A finished job whose layer conv3 has 52 units (past a default page of 50), each labelled twice, aggregated."""
    job = make_job(layers={"conv3": 52, "conv4": 2}, exemplars_per_unit=1)
    annie, otto = make_user("annie", qualified=True), make_user("otto", qualified=True)
    for hit in make_hits(job):
        if hit.unit.layer.name == "conv3":
            answer(hit, annie, hit.unit.iou_label, "object")
            answer(hit, otto, "dog" if hit.unit.index % 2 else hit.unit.iou_label, "object")
    aggregation_run_layer(layer=job.layer_set.get(name="conv3"), adapt=False)
    return job


def test_a_layers_labels_come_in_one_call_numbered_from_1_and_as_a_dataframe(uc, labelled):
    table = uc.labels(labelled.pk, "conv3")
    assert len(table) == 52  # more than one default page of 50
    assert [row.unit for row in table] == list(range(1, 53))
    first = table.rows[0]
    assert isinstance(first, Label) and first.unit_index == 0 and first.crowd_word == first.iou_label
    df = table.to_pandas()
    assert df.index.name == "unit" and list(df.index[:2]) == [1, 2]
    assert {"crowd_word", "iou_label", "agreement", "word_match"} <= set(df.columns)
    assert df.loc[1, "word_match"]
    assert table.to_csv().splitlines()[0].startswith("unit,unit_index,layer_name,crowd_word")


def test_the_raw_api_filters_labels_by_layer_name_and_numbers_units_from_1(live_server, labelled, rita):
    token = AuthToken.objects.create(user=rita)[1]
    headers = {"Authorization": f"Token {token}"}
    url = f"{live_server.url}/api/v1/labels/?job={labelled.pk}&layer=conv3&page_size=1000"
    body = requests.get(url, headers=headers, timeout=30).json()
    assert body["count"] == 52 and body["next"] is None and len(body["results"]) == 52
    assert body["results"][4]["unit_number"] == 5 and body["results"][4]["unit_index"] == 4
    by_id = requests.get(url.replace("layer=conv3", f"layer={labelled.layer_set.get(name='conv3').pk}"),
                         headers=headers, timeout=30).json()
    assert by_id["count"] == 52
    units = requests.get(f"{live_server.url}/api/v1/units/?job={labelled.pk}&layer=conv4", headers=headers,
                         timeout=30).json()
    assert [u["unit_number"] for u in units["results"]] == [1, 2]


def test_the_unversioned_paths_still_answer_and_are_marked_deprecated(live_server, rita):
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=rita)[1]}"}
    old = requests.get(f"{live_server.url}/api/jobs/", headers=headers, timeout=30)
    assert old.status_code == 200 and old.headers["Deprecation"].startswith("@")
    assert old.headers["Link"] == '</api/v1/jobs/>; rel="successor-version"'
    new = requests.get(f"{live_server.url}/api/v1/jobs/", headers=headers, timeout=30)
    assert new.status_code == 200 and "Deprecation" not in new.headers


def test_lists_follow_every_page(uc, transactional_db):
    for _ in range(3):
        make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    ids = [job.id for job in uc.jobs.list()]
    assert len(set(ids)) == 3
    # 60 HITs over two pages of 50
    job = make_job(layers={"conv1": 60}, exemplars_per_unit=1)
    make_hits(job)
    assert len(uc.hits.list(job=job.pk)) == 60


def test_register_create_wait_publish_and_export(uc, tiny_mixture_dir, media_root, settings, tmp_path):
    settings.DATASET_PATHS_ALLOWED = [tiny_mixture_dir.parent]
    net = uc.networks.register("tiny-net", project=lab_project().name, arch="mixturenet", num_classes=45)
    ds = uc.datasets.register("tiny-data", project=lab_project().pk, kind="mixture", path=str(tiny_mixture_dir))
    seen = []
    job = uc.jobs.create(net, ds, layers=["conv3"], top_k=2, batch_size=8).wait(progress=True, timeout=120)
    seen.append(job.status)
    assert job.status == "succeeded" and job.layers == ["conv3"]
    batch = uc.hits.publish(job, layers=["conv3"], assignments=2, redundancy_probability=0.9, redundancy_cap=4)
    assert batch is not None and batch.hits > 0 and batch.assignments_per_hit == 2 and batch.channel == "site"
    assert (batch.redundancy_probability, batch.redundancy_cap) == (0.9, 4)
    assert uc.hits.publish(job, layers=["conv3"]) is None  # every unit already has its HIT
    path = uc.exports.download(job, "units_csv", layer="conv3", to=tmp_path / "units.csv")
    assert path.read_text(encoding="utf-8-sig").startswith("layer,unit,crowd_word")
    with pytest.raises(NotFound, match="has no layer 'conv9'; its layers: conv3"):
        uc.hits.publish(job, layers=["conv9"])


def test_a_checkpoint_that_does_not_fit_is_refused_with_the_servers_reason(uc, media_root, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(ValidationError) as caught:
        uc.networks.register("bad", project="lab", arch="mixturenet", checkpoint=bad)
    assert caught.value.status == 400 and "fix the named fields" in str(caught.value)
    assert caught.value.message or caught.value.field_errors
    with pytest.raises(FileNotFoundError, match="No checkpoint file"):
        uc.networks.register("gone", project="lab", arch="mixturenet", checkpoint=tmp_path / "missing.pth")


def test_field_errors_are_carried(uc, transactional_db):
    job = make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    with pytest.raises(ValidationError) as caught:
        uc.jobs.create(999999, job.dataset_id, layers=["conv1"], start=False)
    assert "network" in caught.value.field_errors and "network:" in str(caught.value)
    with pytest.raises(ValidationError, match="top_k must be between 1 and 100"):
        uc.jobs.create(job.network_id, job.dataset_id, layers=["conv1"], top_k=100000, start=False)


def test_a_failed_job_raises_with_its_message(uc, transactional_db):
    job = make_job(layers={"conv1": 1}, exemplars_per_unit=1, status="failed")
    job.error_message = "CUDA out of memory"
    job.save(update_fields=["error_message"])
    with pytest.raises(JobFailed, match="CUDA out of memory"):
        uc.jobs.get(job.pk).wait()


def test_bad_credentials_unknown_objects_and_wrong_roles_are_clear_errors(live_server, rita, transactional_db):
    with pytest.raises(ValidationError, match="Unable to log in"):
        UnitCrowd(live_server.url, username="rita", password="wrong")
    with pytest.raises(AuthenticationError, match="check the token"):
        UnitCrowd(live_server.url, token="0" * 64).jobs.list()
    uc = UnitCrowd(live_server.url, username="rita", password=PASSWORD)
    with pytest.raises(NotFound):
        uc.jobs.get(999999)
    make_user("annie", qualified=True)
    with pytest.raises(PermissionDenied, match="requesters group"):
        UnitCrowd(live_server.url, username="annie", password=PASSWORD).jobs.list()
    with pytest.raises(ValueError, match="token=..., or username"):
        UnitCrowd(live_server.url)


def test_an_expired_token_is_renewed_with_the_password(uc, rita):
    AuthToken.objects.filter(user=rita).delete()  # as if it had expired
    assert uc.jobs.list() == []
    assert AuthToken.objects.filter(user=rita).count() == 1


def test_a_server_that_is_down_is_named_and_gets_are_retried(transactional_db):
    uc = UnitCrowd("http://127.0.0.1:9", token="x", retries=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="Cannot reach http://127.0.0.1:9/.*check the URL"):
        uc.jobs.list()
    with pytest.raises(ServerUnavailable, match="Cannot reach"):
        uc.jobs.create(1, 1, layers=["conv1"])  # carries an idempotency key, so it is retried too
    with pytest.raises(ServerUnavailable, match="without an idempotency key is not retried"):
        uc.request("POST", "jobs/", key=False, json={})
    assert time.monotonic() - started < 5


def test_creates_carry_one_idempotency_key_that_the_server_honours(uc, transactional_db):
    job = make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    sent = []
    uc.session.hooks["response"].append(lambda r, *args, **kwargs: sent.append(r))
    created = uc.jobs.create(job.network_id, job.dataset_id, layers=["conv1"], start=False)
    key = sent[-1].request.headers["Idempotency-Key"]
    again = uc.request("POST", "jobs/", key=False, headers={"Idempotency-Key": key},
                       json={"network": job.network_id, "dataset": job.dataset_id, "layers": ["conv1"]})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == created.id
    assert len(uc.jobs.list()) == 2  # make_job's and the one created, not a third


def test_429_is_retried_as_retry_after_asks(uc, monkeypatch):
    """The token endpoint's throttle (per address) answers 429 with Retry-After; the client waits that long
    and retries (a login may be retried: the throttle refuses before anything is written)."""
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "token": "1/s"})
    seen = []
    uc.session.hooks["response"].append(lambda r, *args, **kwargs: seen.append((r.status_code,
                                                                                r.headers.get("Retry-After"))))
    started = time.monotonic()
    uc.login()
    uc.login()  # within a second of the one before: 429 with Retry-After: 1, then retried
    assert seen.count((429, "1")) >= 1 and seen[-1][0] == 200
    assert time.monotonic() - started >= 0.9


def test_pictures_are_pil_images(uc, media_root, transactional_db):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=3, write_pictures=True)
    images = uc.units.pictures(job.pk, "conv3", 2)
    assert len(images) == 3 and images[0].size == (32, 32)
    with pytest.raises(ValueError, match="numbered from 1"):
        uc.units.get(job.pk, "conv3", 0)


def test_the_cli_lists_jobs_and_prints_a_layers_labels_as_csv(live_server, labelled, capsys):
    base = ["--url", live_server.url, "--username", "rita", "--password", PASSWORD]
    make_user("rita", requester=True)
    assert cli_main([*base, "jobs", "list"]) == 0
    assert f"{labelled.pk:>5}  succeeded" in capsys.readouterr().out
    assert cli_main([*base, "labels", str(labelled.pk), "conv3", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 53 and lines[1].startswith("1,0,conv3,")
    assert cli_main([*base, "labels", str(labelled.pk), "nope"]) == 1
    assert "has no layer 'nope'" in capsys.readouterr().err


def test_the_package_imports_without_django_or_torch():
    code = ("import sys, unitcrowd_client; "
            "assert not any(m in sys.modules for m in ('django', 'torch', 'pandas')), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_csv_writes_to_a_stream():
    from unitcrowd_client import LabelTable

    out = io.StringIO()
    LabelTable(job=1, layer="x", rows=[]).to_csv(out)
    assert out.getvalue().startswith("unit,")


def test_the_quickstart_example_runs_against_the_live_server(live_server, rita, tiny_mixture_dir, media_root,
                                                              settings):
    settings.DATASET_PATHS_ALLOWED = [tiny_mixture_dir.parent]
    result = subprocess.run(
        [sys.executable, "examples/quickstart.py", "--url", live_server.url, "--username", "rita", "--password",
         PASSWORD, "--project", lab_project().name, "--dataset-path", str(tiny_mixture_dir), "--layer", "conv3"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout and "published" in result.stdout
    assert "labels DataFrame: 0 rows, columns ['unit_index', 'layer_name', 'crowd_word'" in result.stdout


def test_the_schema_passes_openapi_spec_validator(live_server, rita):
    from openapi_spec_validator import validate

    headers = {"Authorization": f"Token {AuthToken.objects.create(user=rita)[1]}"}
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", headers=headers, timeout=60).json()
    validate(schema)
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


@pytest.mark.parametrize("value", ["²", "no-such-layer", "layer4.1"])
def test_a_layer_filter_that_names_nothing_answers_an_empty_list(live_server, rita, value):
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=rita)[1]}"}
    response = requests.get(f"{live_server.url}/api/v1/labels/", params={"layer": value}, headers=headers, timeout=30)
    assert response.status_code == 200 and response.json()["count"] == 0
    refused = requests.get(f"{live_server.url}/api/v1/labels/", params={"layer": "1.5"}, headers=headers, timeout=30)
    assert refused.status_code == 400 and "neither an id" in refused.json()["layer"][0]


def test_a_client_generated_from_the_schema_by_openapi_python_client_lists_jobs(live_server, rita, tmp_path):
    """A real third-party consumer of the schema: openapi-python-client generates a client without a warning
    (literal_enums: the boolean filters take true/True/1), and the generated client lists jobs."""
    make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    token = AuthToken.objects.create(user=rita)[1]
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", headers={"Authorization": f"Token {token}"},
                          timeout=60)
    (tmp_path / "schema.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text("post_hooks: []\nliteral_enums: true\n")
    generator = [sys.executable, "-m", "openapi_python_client", "generate", "--path", "schema.json",
                 "--output-path", "ucgen", "--meta", "none", "--config", "config.yaml"]
    result = subprocess.run(generator, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        from ucgen.api.v1 import v1_jobs_list
        from ucgen.client import AuthenticatedClient

        with AuthenticatedClient(base_url=live_server.url, token=token, prefix="Token") as client:
            page = v1_jobs_list.sync(client=client)
        assert page.count == 1 and page.results[0].status == "succeeded"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "ucgen" or m.startswith("ucgen.")]:
            del sys.modules[name]


def _checkpoint(path):
    import torch

    from tasks.engine.models import load_model

    torch.save(load_model("mixturenet", None, num_classes=45).state_dict(), path)
    return path


def test_a_checkpoint_upload_streams_with_progress_and_a_retry_sends_it_whole_again(uc, media_root, tmp_path,
                                                                                       monkeypatch):
    from rest_framework.response import Response

    from units.dissection.api.views import NetworkViewSet
    from units.dissection.models import Network

    path = _checkpoint(tmp_path / "tiny.pth")
    create, answered = NetworkViewSet.create, []

    def busy_once(self, request, *args, **kwargs):  # the first try meets a busy server, the second gets through
        if not answered:
            answered.append(len(request.body))
            return Response({"detail": "busy"}, status=503, headers={"Retry-After": "0"})
        return create(self, request, *args, **kwargs)

    monkeypatch.setattr(NetworkViewSet, "create", busy_once)
    seen: list[tuple[int, int]] = []
    net = uc.networks.register("streamed", project="lab", arch="mixturenet", checkpoint=path,
                               progress=lambda sent, total: seen.append((sent, total)), mean=[0.4, 0.5, 0.6],
                               std=[0.2, 0.2, 0.25])

    total = seen[-1][1]
    assert answered == [total]  # the server read the whole first body: as many bytes as the callback's total
    assert total > path.stat().st_size and seen[-1][0] == total
    restarts = [i for i in range(1, len(seen)) if seen[i][0] < seen[i - 1][0]]
    assert len(restarts) == 1  # the retry sent the body again from its start
    assert all(t == total for _, t in seen)
    stored = Network.objects.get(pk=net.id)
    assert stored.checkpoint.read() == path.read_bytes() and Network.objects.count() == 1
    assert stored.mean == [0.4, 0.5, 0.6] and stored.std == [0.2, 0.2, 0.25]  # lists: the field repeated


def test_the_cli_registers_a_network_with_an_upload_bar(live_server, rita, media_root, tmp_path, capsys):
    path = _checkpoint(tmp_path / "tiny.pth")
    base = ["--url", live_server.url, "--username", "rita", "--password", PASSWORD]
    assert cli_main([*base, "networks", "register", "barred", "--project", "lab", "--arch", "mixturenet",
                     "--checkpoint", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("registered network ") and "(barred)" in out
    assert "upload tiny.pth" in err and "100%" in err
