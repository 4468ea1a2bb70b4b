"""The small load run of CI: 8 simulated annotators for 15 s through the real HTTP API,
on PostgreSQL, with debounced aggregation queued to Redis, the HITs spread over 3 projects (one a
private pool's). Only correctness is asserted (nothing over-assigned, no HIT twice to one annotator,
every 2xx submit stored, no 5xx, no HIT outside an annotator's projects or pool); the timings are
printed (`pytest -s`), never asserted: they depend on the machine."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from benchmarks.loadtest.command import Command
from tests.conftest import need_service
from tests.integration.test_worker import services  # noqa: F401  (PostgreSQL + Redis fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.mark.usefixtures("services")
def test_a_small_crowd_through_the_api_loses_nothing_and_never_over_assigns(live_server, settings):
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    settings.RESULTS_AGGREGATE_DEBOUNCE = 2.0  # queued to Redis, as in production; no worker takes it here
    out = StringIO()
    call_command(Command(), "--url", live_server.url, "--annotators", "8", "--duration", "15", "--hits", "120",
                 # --check: any correctness count > 0 fails
                 "--assignments", "3", "--window", "5", "--check", stdout=out)
    report = out.getvalue()
    print(report)
    submitted = int(report.split("submissions: ")[1].split()[0])
    assert submitted > 0
    # The timeline's windows count every 2xx submit once: their rates x 5 s add up to the total.
    timeline = report.split("timeline (5 s windows")[1].split("\nmachine:")[0].splitlines()[3:]
    assert round(sum(float(line.split()[1]) * 5 for line in timeline)) == submitted
    assert "over 3 projects, project 2's to a private pool of 3 annotators" in report
    for line in ("over-assigned HITs: 0", "HITs twice to one annotator: 0",
                 "2xx submits missing from the database: 0", "5xx answers: 0",
                 "HITs given outside the annotator's projects or pool: 0"):
        assert line in report
