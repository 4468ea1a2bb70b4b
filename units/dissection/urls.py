"""Pages of the compute side: networks, datasets, jobs, layers, units, publishing."""
from django.urls import path

from . import views

app_name = "dissection"
urlpatterns = [
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/new/", views.job_new, name="job_new"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/status.json", views.job_status, name="job_status"),
    path("jobs/<int:job_id>/run/", views.job_run, name="job_run"),
    path("jobs/<int:job_id>/edit/", views.job_edit, name="job_edit"),
    path("jobs/<int:job_id>/delete/", views.job_remove, name="job_delete"),
    path("jobs/<int:job_id>/paint/", views.paint, name="paint"),
    path("layers/<int:layer_id>/", views.layer_report, name="layer"),
    path("units/<int:unit_id>/", views.unit_detail, name="unit"),
    path("networks/", views.network_list, name="network_list"),
    path("networks/new/", views.network_new, name="network_new"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
]
