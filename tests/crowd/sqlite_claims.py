"""Run by test_sqlite_concurrency.py in a fresh process on the default settings (a SQLite file):
many annotators claim and submit through the API at once; prints the status codes as JSON."""
import json
import os
import sys
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate_site.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from tests.factories import make_hits, make_job, make_user  # noqa: E402


def main(n_workers: int) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    job = make_job(layers={"conv3": n_workers // 2}, exemplars_per_unit=2)
    make_hits(job, assignments=2)
    workers = [make_user(f"w{i}", qualified=True) for i in range(n_workers)]
    connections.close_all()
    barrier = threading.Barrier(n_workers)
    statuses: list[int] = []
    errors: list[str] = []

    def work(worker) -> None:
        client = APIClient()
        client.force_authenticate(worker)
        try:
            barrier.wait()
            while True:
                claim = client.post("/api/assignments/next/")
                statuses.append(claim.status_code)
                if claim.status_code != 201:
                    break
                pk = claim.json()["assignment"]["id"]
                submit = client.post(f"/api/assignments/{pk}/submit/", {"word": "seven", "category": "object"},
                                     format="json")
                statuses.append(submit.status_code)
        except Exception as exc:  # reported: a failing thread must fail the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    from units.crowd.models import Annotation, Assignment

    print(json.dumps({
        "engine": settings.DATABASES["default"]["ENGINE"], "statuses": statuses, "errors": errors,
        "annotations": Annotation.objects.count(), "slots": 2 * (n_workers // 2),
        "submitted": Assignment.objects.filter(status="submitted").count(),
    }))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
