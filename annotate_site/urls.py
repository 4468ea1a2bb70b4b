"""URL map. Each app owns its own urls module; the API lives under /api/."""
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotate_site.media import picture, protected_media
from annotate_site.views import healthz, home, password_reset_hidden
from units.crowd.views.publish import publish

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Before django.contrib.auth's routes, which it hides (see password_reset_hidden).
    re_path(r"^accounts/(?P<route>password_reset|reset)/", password_reset_hidden, name="password_reset_hidden"),
    path("accounts/", include("annotate_site.accounts")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs are a page: a signed-out browser is sent to the login form (the schema answers 401).
    # The split view serves its script from a URL: the Content-Security-Policy allows no inline script.
    path("api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    # The current API; the unversioned paths below answer the same for one release, marked deprecated
    # (annotate_site/api_versions.py). Listed last, they are what reverse() gives for the shared names.
    path("api/v1/", include("annotate_site.api_urls")),
    path("api/", include("annotate_site.api_urls")),
    path("", home, name="home"),
    path("", include("units.dissection.urls")),
    path("publish/", publish, name="publish"),
    path("crowd/", include("units.crowd.urls")),
    path("results/", include("units.results.urls")),
    path("sanity/", include("units.sanity.urls")),
    path("projects/", include("units.projects.urls")),
    # Annotators' pictures: one opaque URL each (see annotate_site/media.py).
    re_path(r"^pictures/(?P<public_id>[A-Za-z0-9_-]{1,32})$", picture, name="picture"),
    re_path(r"^pictures/(?P<public_id>[A-Za-z0-9_-]{1,32})/plain$", picture, {"variant": "plain"},
            name="picture_plain"),
    re_path(r"^media/(?P<path>.+)$", protected_media, name="media"),
]
