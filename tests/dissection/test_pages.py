"""Requester pages render for requesters; anonymous users are sent to sign in, annotators get 403."""
import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_job
from units.dissection.models import DissectionJob, Network

pytestmark = pytest.mark.django_db


def page_urls(job):
    layer = job.layer_set.first()
    unit = layer.units.first()
    return [
        reverse("dissection:job_list"), reverse("dissection:job_new"), reverse("dissection:job", args=[job.pk]),
        reverse("dissection:job_status", args=[job.pk]), reverse("dissection:layer", args=[layer.pk]),
        reverse("dissection:unit", args=[unit.pk]), reverse("dissection:network_list"),
        reverse("dissection:network_new"),
        reverse("dissection:dataset_list"), reverse("dissection:dataset_new"), reverse("publish"),
    ]


def test_anonymous_visitors_are_sent_to_the_sign_in_page(client):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    for url in page_urls(job):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_annotators_are_refused_every_requester_page(client, annotator):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    client.login(username=annotator.username, password=PASSWORD)
    for url in page_urls(job):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("dissection:job_run", args=[job.pk])).status_code == 403


def test_requesters_see_every_page(client, requester):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    client.login(username=requester.username, password=PASSWORD)
    for url in page_urls(job):
        assert client.get(url).status_code == 200, url


def test_the_status_endpoint_reports_the_rows_progress(client, requester):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1, status=DissectionJob.Status.RUNNING)
    DissectionJob.objects.filter(pk=job.pk).update(stage="counts", progress=0.625)
    client.login(username=requester.username, password=PASSWORD)
    data = client.get(reverse("dissection:job_status", args=[job.pk])).json()
    assert data["status"] == "running"
    assert data["stage"] == "counts"
    assert data["progress"] == 0.625
    assert data["finished"] is False


def test_the_layer_report_sorts_by_score_with_the_best_unit_first(client, requester):
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=1)  # factory: unit u has IoU 0.02 * (u + 1)
    layer = job.layer_set.get()
    client.login(username=requester.username, password=PASSWORD)
    by_score = list(client.get(reverse("dissection:layer", args=[layer.pk]), {"sort": "score"}).context["units"])
    assert [u.index for u in by_score] == [3, 2, 1, 0]
    by_unit = list(client.get(reverse("dissection:layer", args=[layer.pk]), {"sort": "unit"}).context["units"])
    assert [u.index for u in by_unit] == [0, 1, 2, 3]


def test_a_user_label_is_escaped_on_the_unit_page(client, requester):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1, concepts=[("<script>x</script>", "object")])
    unit = job.layer_set.get().units.get()
    client.login(username=requester.username, password=PASSWORD)
    body = client.get(reverse("dissection:unit", args=[unit.pk])).content.decode()
    assert "<script>x</script>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body


def test_media_files_are_served_to_their_projects_members_only(client, annotator, requester, media_root):
    from tests.factories import make_job, make_project, make_user

    job = make_job()  # the requester's project (lab)
    Network.objects.filter(pk=job.network_id).update(checkpoint="checkpoints/net.pt")
    (media_root / "checkpoints").mkdir()
    (media_root / "checkpoints" / "net.pt").write_bytes(b"weights")
    (media_root / "jobs" / str(job.pk)).mkdir(parents=True)
    (media_root / "jobs" / str(job.pk) / "pic.jpg").write_bytes(b"jpeg")
    (media_root / "stray.txt").write_bytes(b"no project's")
    client.login(username=annotator.username, password=PASSWORD)
    assert client.get("/media/checkpoints/net.pt").status_code == 403
    assert client.get(f"/media/jobs/{job.pk}/pic.jpg").status_code == 403  # annotators get pictures by opaque URL
    client.login(username=requester.username, password=PASSWORD)
    assert client.get("/media/checkpoints/net.pt").status_code == 200
    assert client.get(f"/media/jobs/{job.pk}/pic.jpg").status_code == 200
    assert client.get("/media/stray.txt").status_code == 404
    outsider = make_user("bea")
    make_project("other lab", owner=outsider)
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get("/media/checkpoints/net.pt").status_code == 404
    assert client.get(f"/media/jobs/{job.pk}/pic.jpg").status_code == 404


def test_a_job_created_on_the_page_runs_and_the_page_shows_it(client, requester, tiny_mixture_dir, media_root,
                                                              django_capture_on_commit_callbacks):
    from tests.factories import make_registered_pipeline

    template = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    client.login(username=requester.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dissection:job_new"), {
            "network": template.network_id, "dataset": template.dataset_id, "layers": "conv2, conv3",
            "top_k": 2, "quantile": 0.005, "iou_rule": "lite", "batch_size": 8, "shards": 1, "start": "on",
        })
    job = DissectionJob.objects.exclude(pk=template.pk).get()
    assert response["Location"] == reverse("dissection:job", args=[job.pk])
    assert job.layers == ["conv2", "conv3"]
    job.refresh_from_db()
    assert job.status == "succeeded", job.error_message
    body = client.get(response["Location"]).content.decode()
    assert "succeeded" in body and reverse("dissection:layer", args=[job.layer_set.get(name="conv2").pk]) in body


def test_a_job_form_with_bad_values_shows_errors_and_creates_nothing(client, requester, tiny_mixture_dir):
    from tests.factories import make_registered_pipeline

    template = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    client.login(username=requester.username, password=PASSWORD)
    response = client.post(reverse("dissection:job_new"), {
        "network": template.network_id, "dataset": template.dataset_id, "layers": " , ",
        "top_k": 2, "quantile": 0.005, "iou_rule": "lite", "batch_size": 8, "shards": 1,
    })
    assert response.status_code == 200
    assert "Name at least one layer" in response.content.decode()
    assert DissectionJob.objects.count() == 1


@pytest.mark.parametrize("layers, named", [("conv3, layer4", "'layer4'"), ("conv9", "'conv9'"),
                                           ("conv3.weight", "'conv3.weight'")])
def test_a_layer_the_network_does_not_have_is_refused_on_the_form_before_any_job_exists(
        client, requester, tiny_mixture_dir, layers, named):
    from tests.factories import make_registered_pipeline

    template = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    client.login(username=requester.username, password=PASSWORD)
    response = client.post(reverse("dissection:job_new"), {
        "network": template.network_id, "dataset": template.dataset_id, "layers": layers,
        "top_k": 2, "quantile": 0.005, "iou_rule": "lite", "batch_size": 8, "shards": 1, "start": "on",
    })
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Layer {named} is not in the model" in body.replace("&#x27;", "'")
    assert "conv1, pool1, conv2" in body  # the layers it does have
    assert DissectionJob.objects.count() == 1  # only the template


def test_a_failed_job_can_be_edited_and_deleted_but_a_succeeded_one_cannot(client, requester, media_root,
                                                                          django_capture_on_commit_callbacks):
    from tests.factories import make_job

    failed = make_job(layers={"conv3": 2})
    failed.status, failed.error_message, failed.output_dir = "failed", "layer 'conv9' is not in the model", "jobs/x"
    failed.save()
    (media_root / "jobs" / "x").mkdir(parents=True)
    (media_root / "jobs" / "x" / "partial.npy").write_bytes(b"0")
    client.login(username=requester.username, password=PASSWORD)
    page = client.get(reverse("dissection:job", args=[failed.pk])).content.decode()
    assert 'id="edit-job"' in page and 'id="delete-job"' in page

    edit = client.get(reverse("dissection:job_edit", args=[failed.pk])).content.decode()
    assert 'value="conv3"' in edit  # the job's settings, ready to correct
    response = client.post(reverse("dissection:job_edit", args=[failed.pk]), {
        "network": failed.network_id, "dataset": failed.dataset_id, "layers": "conv2, conv3",
        "top_k": 3, "quantile": 0.01, "iou_rule": "original", "batch_size": 4, "shards": 1,
    })
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.layers, failed.top_k, failed.quantile, failed.iou_rule, failed.batch_size) == (
        ["conv2", "conv3"], 3, 0.01, "original", 4)

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("dissection:job_delete", args=[failed.pk])).status_code == 302
    assert not DissectionJob.objects.filter(pk=failed.pk).exists()
    assert not (media_root / "jobs" / "x").exists()

    done = make_job(layers={"conv3": 2})
    assert done.status == "succeeded"
    assert 'id="delete-job"' not in client.get(reverse("dissection:job", args=[done.pk])).content.decode()
    client.post(reverse("dissection:job_delete", args=[done.pk]))
    client.post(reverse("dissection:job_edit", args=[done.pk]), {
        "network": done.network_id, "dataset": done.dataset_id, "layers": "conv2",
        "top_k": 3, "quantile": 0.01, "iou_rule": "lite", "batch_size": 4, "shards": 1,
    })
    done.refresh_from_db()
    assert DissectionJob.objects.filter(pk=done.pk).exists() and done.layers == ["conv3"]
