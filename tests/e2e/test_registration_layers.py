"""The registration form's live layer table in a real browser: typing an architecture fills the table from
the shape probe, the search box filters it, a name that is no architecture shows the server's reason."""
import re

import pytest

from tests.factories import make_user
from tests.e2e.conftest import csp_violations, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_choosing_an_architecture_shows_its_layers_live(live_server, page):
    make_user("rhea", requester=True)
    log_in(page, live_server, "rhea")
    page.goto(f"{live_server.url}/networks/new/")
    page.fill("#id_input_size", "64")
    page.fill("#id_architecture", "resnet18")
    table = page.locator("#architecture-layers")
    layer4 = table.locator('tr[data-layer="layer4"]')
    layer4.wait_for()
    assert re.search(r"^layer4\s+Sequential\s+512x2x2\s+512\s+map of 512 units at 2x2$", layer4.inner_text().strip())
    fc = table.locator("tr", has_text="fc")
    assert "pooled vector" in fc.first.inner_text() and fc.first.get_attribute("data-layer") is None
    assert "of resnet18 at 64x64 px" in table.locator("h2").inner_text()

    table.locator("input[type=search]").fill("layer4.1")
    visible = [row.inner_text().split()[0] for row in table.locator("tbody tr:visible").all()]
    assert visible and all(name.startswith("layer4.1") for name in visible)

    page.fill("#id_architecture", "resnet19")
    problem = table.locator("[data-role=problem]")
    problem.wait_for(state="visible")
    assert "close names" in problem.inner_text() and table.locator("tbody tr").count() == 0
    assert csp_violations(page) == []
