"""An MTurk import's words pass the annotators' own word rule: bad rows are refused and counted, the rest come in."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.factories import make_job
from units.crowd.models import Annotation, Assignment
from units.crowd.validation import WORD_MAX
from units.results.imports import mturk_import

pytestmark = pytest.mark.django_db

ROWS = [  # (worker, word, category, refused?)
    ("W1", "café & crème", "object", False),
    ("W2", "<b>dog</b>", "object", True),
    ("W3", "  two   words ", "scene", False),  # cleaned as the form cleans it
    ("W4", "x" * (WORD_MAX + 1), "object", True),
    ("W5", "", "object", True),  # a concept with no word: the form asks for one
    ("W6", "", "none", False),  # "no clear concept" needs none
    ("W7", "_under", "object", True),
    ("W8", "猫", "object", False),
    ("W9", "javascript:alert(1)", "object", True),
]


@pytest.fixture
def layer(db):
    return make_job(layers={"conv3": 2}, exemplars_per_unit=4).layer_set.get()


def write(path):
    lines = ["WorkerId,AssignmentStatus,Input.unit_number,Answer.word,Answer.category"]
    lines += [f'{w},Submitted,1,"{word}",{cat}' for w, word, cat, _ in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_invalid_words_are_refused_counted_and_leave_nothing_behind(layer, tmp_path):
    counts = mturk_import(path=write(tmp_path / "m.csv"), layer=layer)
    refused = [line for line, row in enumerate(ROWS, start=2) if row[3]]
    assert counts == {"rows": 9, "created": 4, "skipped": 0, "invalid": 5, "invalid_lines": refused}
    words = dict(Annotation.objects.values_list("assignment__worker__username", "word"))
    assert words == {"mturk-W1": "café & crème", "mturk-W3": "two words", "mturk-W6": "", "mturk-W8": "猫"}
    # A refused row writes nothing: no assignment, not even the imported worker's account.
    refused_workers = [f"mturk-{w}" for w, *_, bad in ROWS if bad]
    assert not get_user_model().objects.filter(username__in=refused_workers).exists()
    assert Assignment.objects.count() == 4


def test_the_command_reports_the_refused_lines(layer, tmp_path):
    out = io.StringIO()
    path = write(tmp_path / "m.csv")
    call_command("import_mturk", str(path), "--job", str(layer.job_id), "--layer", "conv3", stdout=out)
    assert out.getvalue().startswith(
        "4 annotation(s) imported, 0 already known, 5 refused for an invalid Answer.word (line(s) 3, 5, 6, 8, 10), "
        "from 9 row(s)")


def test_the_upload_page_says_how_many_rows_it_refused_and_where(client, layer, tmp_path, media_root):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import make_user

    client.force_login(make_user("rita", requester=True))
    upload = SimpleUploadedFile("answers.csv", write(tmp_path / "answers.csv").read_bytes(), content_type="text/csv")
    page = client.post("/results/imports/", {"kind": "mturk", "layer": layer.pk, "file": upload}, follow=True)
    text = page.content.decode()
    assert page.status_code == 200
    assert ("4 annotation(s) imported from answers.csv (0 already known, "
            "5 refused for an invalid word (lines 3, 5, 6, 8, 10))") in text
