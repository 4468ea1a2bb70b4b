"""The API names a project by id or by name; another project's name reads like a name that does not exist."""
import pytest
from rest_framework.test import APIClient

from tests.factories import lab_project, make_project, make_user
from units.dissection.models import Network

pytestmark = pytest.mark.django_db


def _register(user, project) -> tuple[int, dict]:
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/v1/networks/", {"project": project, "name": "n", "architecture": "mixturenet"},
                        format="json")
    return response.status_code, response.json()


def test_a_member_registers_in_their_project_by_name_and_not_in_anothers(media_root):
    rita = make_user("rita", requester=True)  # a requester of "lab"
    other_owner = make_user("olga")
    make_project("other-lab", owner=other_owner)
    status, body = _register(rita, lab_project().name)
    assert status == 201 and Network.objects.get(pk=body["id"]).project == lab_project()
    foreign = _register(rita, "other-lab")
    unknown = _register(rita, "no-such-lab")
    assert foreign[0] == unknown[0] == 400
    assert str(foreign[1]).replace("other-lab", "X") == str(unknown[1]).replace("no-such-lab", "X")
    assert Network.objects.count() == 1
