"""Results pages (requesters): dashboards, synonyms, exports, imports."""
from django.urls import path

from . import views, views_data

app_name = "results"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("layers/<int:layer_id>/", views.layer_detail, name="layer"),
    path("layers/<int:layer_id>/aggregate/", views.layer_aggregate, name="aggregate"),
    path("annotators/", views.annotators, name="annotators"),
    path("units/<int:unit_id>/", views.unit_detail, name="unit"),
    path("datasets/<int:dataset_id>/synonyms/", views_data.synonyms, name="synonyms"),
    path("synonyms/<int:entry_id>/delete/", views_data.synonym_remove, name="synonym_delete"),
    path("exports/", views_data.exports, name="exports"),
    path("exports/<int:export_id>/status/", views_data.export_status, name="export_status"),
    path("exports/<int:export_id>/download/", views_data.export_download, name="export_download"),
    path("imports/", views_data.imports, name="imports"),
]
