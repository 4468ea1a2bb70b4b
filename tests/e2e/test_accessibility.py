"""Every page, as an annotator and as a requester, checked by axe-core in Chromium: no serious or critical
violation, and one <h1>. Contrast is part of axe's rules (4.5:1 for text). Nothing on any page is
blocked by the Content-Security-Policy either (a blocked script or style is a broken page)."""
import pytest

from tests.e2e.conftest import axe_violations, csp_violations, log_in, start_working
from tests.factories import make_user
from tests.results.helpers import answer
from units.crowd.models import Hit
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:::crowdkit")]

ANNOTATOR_PAGES = ["/crowd/", "/crowd/instructions/", "/crowd/qualification/", "/accounts/password_change/"]
SIGNED_OUT_PAGES = ["/accounts/login/", "/accounts/signup/", "/no-such-page/"]


def requester_pages(job) -> list[str]:
    layer = job.layer_set.get()
    unit = layer.units.order_by("index").first()
    hit = Hit.objects.filter(unit=unit).first()
    return [
        "/", "/jobs/", "/jobs/new/", f"/jobs/{job.pk}/", f"/layers/{layer.pk}/", f"/units/{unit.pk}/",
        "/networks/", "/networks/new/", "/datasets/", "/datasets/new/", "/publish/",
        "/crowd/review/", f"/crowd/review/hits/{hit.pk}/", "/crowd/review/annotators/", "/crowd/review/gold/",
        "/crowd/review/settings/", "/results/", f"/results/layers/{layer.pk}/", f"/results/units/{unit.pk}/",
        "/results/annotators/", "/results/exports/", "/results/imports/",
        f"/results/datasets/{job.dataset_id}/synonyms/", "/sanity/",
    ]


def check(page, url: str, problems: dict) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    found = axe_violations(page) + [f"CSP: {v}" for v in csp_violations(page)]
    h1 = page.locator("h1").count()
    if h1 != 1:
        found.append(f"{h1} <h1> elements")
    if found:
        problems[url] = found


def test_every_page_passes_axe_with_one_h1(live_server, browser, site):
    from tests.e2e.conftest import DESKTOP, _context

    kim = make_user("kim", qualified=True)
    hits = list(Hit.objects.filter(unit__layer__job=site).order_by("unit__index"))
    answer(hits[0], make_user("ann1"), "café", "object", non_fitting=(1,))
    aggregation_run_layer(layer=site.layer_set.get(), adapt=False)
    make_user("rita", requester=True)
    problems: dict[str, list[str]] = {}

    page = _context(browser, DESKTOP).new_page()
    for path in SIGNED_OUT_PAGES:
        check(page, live_server.url + path, problems)

    log_in(page, live_server, kim.username)
    for path in [*ANNOTATOR_PAGES, f"/crowd/qualification/{site.project_id}/"]:
        check(page, live_server.url + path, problems)
    page.goto(live_server.url + "/crowd/")
    start_working(page)
    check(page, page.url, problems)
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # the page with an error summary
    page.wait_for_selector("#form-errors")
    problems.update({f"{page.url} (errors)": v for v in [axe_violations(page)] if v})

    requester = _context(browser, DESKTOP).new_page()
    log_in(requester, live_server, "rita")
    for path in requester_pages(site):
        check(requester, live_server.url + path, problems)
    assert problems == {}, "\n".join(f"{url}: {issue}" for url, issues in problems.items() for issue in issues)


def test_the_verify_hit_the_paint_page_and_the_api_docs_pass_too(live_server, browser, media_root, tmp_path):
    from tests.dissection.gan_helpers import make_finished_generator_job
    from tests.e2e.conftest import DESKTOP, _context
    from tests.factories import make_job
    from units.crowd.models import CrowdSettings
    from units.crowd.publishing import PublishSettings
    from units.crowd.verify import hit_publish_verify

    from django.db.models import F

    from units.dissection.models import Unit

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # IoU labels worth verifying
    hit_publish_verify(layers=list(job.layer_set.all()), sources=["iou"],
                       settings=PublishSettings.for_verify(assignments_per_hit=1))
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": 0.0})
    vera = make_user("vera", qualified=True)
    gan = make_finished_generator_job(tmp_path)
    make_user("rita", requester=True)
    problems: dict[str, list[str]] = {}

    page = _context(browser, DESKTOP).new_page()
    log_in(page, live_server, vera.username)
    start_working(page)
    page.wait_for_selector("#proposed-label")
    check(page, page.url, problems)  # the verify HIT

    requester = _context(browser, DESKTOP).new_page()
    log_in(requester, live_server, "rita")
    check(requester, f"{live_server.url}/jobs/{gan.pk}/paint/", problems)
    requester.goto(f"{live_server.url}/api/docs/")
    requester.wait_for_selector(".swagger-ui")
    found = axe_violations(requester, only={"html-has-lang"}) + [f"CSP: {v}" for v in csp_violations(requester)]
    if found:
        problems["/api/docs/"] = found
    assert problems == {}, "\n".join(f"{url}: {issue}" for url, issues in problems.items() for issue in issues)
