"""Sanity-check pages, mounted at /sanity/."""
from django.urls import path

from . import views

app_name = "sanity"
urlpatterns = [
    path("", views.report_list, name="list"),
    path("<int:pk>/", views.report_detail, name="detail"),
    path("<int:pk>/publish/", views.report_publish, name="publish"),
    path("<int:pk>/files/<path:path>", views.report_file, name="file"),
]
