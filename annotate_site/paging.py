"""One page of a long list (annotators, units, assignments) for the server-rendered pages."""
from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, items, per_page: int | None = None, param: str = "page") -> Page:
    # get_page, not page: a missing, non-numeric or out-of-range ?page= shows the first or the last page,
    # so a hand-edited link never ends in a 500. PER_PAGE is read at call time so tests can shrink it.
    return Paginator(items, per_page or PER_PAGE).get_page(request.GET.get(param))
