"""Delayed tasks of the embedded setup run in a child process (`python -m annotate_site.run_task`):
its command line, and a real task run through it against the test database."""
import subprocess
import sys
from pathlib import Path

import pytest

from annotate_site import run_task
from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.results.models import AggregationRun, UnitAggregate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv", [[], ["tasks.results.aggregate_layer"], ["tasks.results.aggregate_layer", "{"],
                                  ["tasks.results.aggregate_layer", '{"layer": 1}'], ["os.system", '["true"]'],
                                  ["tasks.results.no_such_task", "[1]"], ["tasks.nowhere.task", "[1]"]])
def test_a_bad_command_line_is_refused_with_status_2(argv, capsys):
    assert run_task.main(argv) == 2
    assert "run_task" in capsys.readouterr().err


def test_only_tasks_of_the_tasks_package_run_in_a_real_child():
    done = subprocess.run([sys.executable, "-m", "annotate_site.run_task", "os.system", '["touch /tmp/x"]'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "TASK_NAME is a task of the tasks package" in done.stderr


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:::crowdkit")
def test_a_task_run_through_it_does_its_work_and_a_failing_one_exits_1():
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=5)
    hits = make_hits(job, assignments=2)
    workers = [make_user(f"rt{i}") for i in range(2)]
    for hit in hits:
        for worker in workers:
            answer(hit, worker, "zero", "object")
    layer = job.layer_set.get()
    assert run_task.main(["tasks.results.aggregate_layer", f"[{layer.pk}]"]) == 0
    assert AggregationRun.objects.filter(layer=layer).count() == 1
    # "zero" is concept "0"
    assert set(UnitAggregate.objects.filter(unit__layer=layer).values_list("crowd_word", flat=True)) == {"0"}
    assert run_task.main(["tasks.results.aggregate_layer", "[\"one\"]"]) == 1  # the task raised: logged, status 1
