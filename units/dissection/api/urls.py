"""API routes for networks, datasets, jobs, layers, units and exemplars (platform)."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views
from .paint import PaintView

router = SimpleRouter()
router.register("networks", views.NetworkViewSet, basename="api-network")
router.register("datasets", views.DatasetViewSet, basename="api-dataset")
router.register("jobs", views.JobViewSet, basename="api-job")
router.register("layers", views.LayerViewSet, basename="api-layer")
router.register("units", views.UnitViewSet, basename="api-unit")
router.register("exemplars", views.ExemplarViewSet, basename="api-exemplar")

urlpatterns = router.urls + [
    path("jobs/<int:job_id>/paint/", PaintView.as_view(), name="api-job-paint"),
    path("architectures/layers/", views.ArchitectureLayersView.as_view(), name="api-architecture-layers"),
]
