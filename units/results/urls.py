"""Results pages (requesters): dashboards, synonyms, exports, imports."""
from django.urls import path

from .views import dashboards, data

app_name = "results"
urlpatterns = [
    path("", dashboards.overview, name="overview"),
    path("layers/<int:layer_id>/", dashboards.layer_detail, name="layer"),
    path("layers/<int:layer_id>/aggregate/", dashboards.layer_aggregate, name="aggregate"),
    path("annotators/", dashboards.annotators, name="annotators"),
    path("units/<int:unit_id>/", dashboards.unit_detail, name="unit"),
    path("datasets/<int:dataset_id>/synonyms/", data.synonyms, name="synonyms"),
    path("synonyms/<int:entry_id>/delete/", data.synonym_remove, name="synonym_delete"),
    path("exports/", data.exports, name="exports"),
    path("exports/<int:export_id>/status/", data.export_status, name="export_status"),
    path("exports/<int:export_id>/download/", data.export_download, name="export_download"),
    path("imports/", data.imports, name="imports"),
]
