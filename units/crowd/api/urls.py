"""API routes of the crowd: the labelling flow (next, submit, return, skip), and the
HIT batch, HIT, assignment and annotation collections."""
from django.urls import path
from rest_framework.routers import SimpleRouter

import annotate_site.converters  # noqa: F401  (registers <id:...>)

from . import verify, views

router = SimpleRouter()
router.register("hit-batches", views.HitBatchViewSet, basename="api-hit-batch")
router.register("hits", views.HitViewSet, basename="api-hit")
router.register("assignments", views.AssignmentViewSet, basename="api-assignment")
router.register("annotations", views.AnnotationViewSet, basename="api-annotation")

# The flow's explicit paths come before the router's, so /assignments/next/ is never read as a pk.
urlpatterns = [
    path("assignments/next/", views.NextAssignmentView.as_view(), name="api-assignment-next"),
    path("assignments/<id:pk>/submit/", views.SubmitView.as_view(), name="api-assignment-submit"),
    path("assignments/<id:pk>/return/", views.ReturnView.as_view(), name="api-assignment-return"),
    path("assignments/<id:pk>/skip/", views.SkipView.as_view(), name="api-assignment-skip"),
    path("assignments/<id:pk>/verdict/", verify.VerdictView.as_view(), name="api-assignment-verdict"),
    path("hit-batches/verify/", verify.VerifyPublishView.as_view(), name="api-hit-batch-verify"),
    *router.urls,
]
