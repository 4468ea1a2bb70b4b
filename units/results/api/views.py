"""REST API of results: aggregated labels, comparisons, aggregation runs, exports and synonyms
(requesters only; the crowd's HITs, assignments and annotations are in units/crowd/api/)."""
from __future__ import annotations

from pathlib import Path

import django_filters
from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from annotate_site.roles import IsMember
from units.crowd.api.serializers import DetailOut
from units.dissection.api.filters import id_filter, id_or_name_filter, strict_boolean
from units.projects.access import VIEW
from units.projects.api.fields import ProjectScopedMixin
from units.dissection.models import Layer

from ..models import AggregationRun, ExportJob, SynonymEntry, UnitAggregate
from ..selectors import detector_counts, layer_comparison, with_layer_units
from ..verification import stored_verifications, verification_table
from ..errors import ResultsError
from ..services import aggregation_request, export_create, synonym_delete, synonym_set
from .serializers import (
    AggregateRequestSerializer, AggregationRunSerializer, ComparisonSerializer, ExportSerializer, LabelSerializer,
    SynonymSerializer,
)

REQUESTERS = [IsAuthenticated, IsMember]


def _bad_request(exc: Exception) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


# --- aggregated labels, runs, comparisons ---------------------------------------------------------


class LabelFilter(django_filters.FilterSet):
    layer = id_or_name_filter("unit__layer", "unit__layer__name", "layer")
    job = id_filter("unit__layer__job")
    category = django_filters.CharFilter(field_name="category")
    word = django_filters.CharFilter(field_name="crowd_word", lookup_expr="iexact")
    min_agreement = django_filters.NumberFilter(field_name="agreement", lookup_expr="gte")
    min_probability = django_filters.NumberFilter(field_name="category_probability", lookup_expr="gte")
    interpretable = strict_boolean("interpretable")
    word_match = strict_boolean("word_match")
    category_match = strict_boolean("category_match")

    class Meta:
        model = UnitAggregate
        fields = ["layer", "job", "interpretable", "category", "word", "word_match", "category_match", "min_agreement",
                  "min_probability"]


class LabelPagination(PageNumberPagination):
    """50 a page unless `page_size` asks for more: a layer's labels (512 units and more) in one call."""

    page_size_query_param = "page_size"
    max_page_size = 5000


class LabelViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The crowd's aggregated label per unit next to the IoU label and their comparison (`word_match`,
    `category_match`); `?job=3&layer=conv2&page_size=1000` gives a layer's labels in one call."""

    project_path = "unit__layer__job__project"
    permission_classes = REQUESTERS
    pagination_class = LabelPagination
    serializer_class = LabelSerializer
    filterset_class = LabelFilter
    queryset = UnitAggregate.objects.select_related("unit__layer").order_by("unit__layer_id", "unit__index")


@extend_schema_view(
    create=extend_schema(request=AggregateRequestSerializer,
                         responses={202: inline_serializer("AggregateQueued", {"queued_layers": serializers.ListField(
                             child=serializers.IntegerField())})},
                         summary="Aggregate a layer, a job's layers or a batch now (runs in the background)"),
)
class AggregationRunViewSet(ProjectScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = AggregationRunSerializer
    filterset_fields = ["layer", "batch", "status"]
    queryset = AggregationRun.objects.order_by("-started_at", "-id")

    def create(self, request, *args, **kwargs):
        data = AggregateRequestSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        v = data.validated_data
        layers = aggregation_request(layers=[v["layer"]] if v.get("layer") else None, job=v.get("job"),
                                     batch=v.get("batch"))
        return Response({"queued_layers": layers}, status=status.HTTP_202_ACCEPTED)


def comparison_payload(layer: Layer, stored: list[tuple] | None = None) -> dict:
    return {"layer": layer.pk, "layer_name": layer.name, "job": layer.job_id, **layer_comparison(layer).as_dict(),
            "detectors": detector_counts(layer), "verification": verification_table(layer, stored)}


class ComparisonViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Per layer: human-only / IoU-only / both / neither, match counts, confusion table, accuracy vs gold."""

    permission_classes = REQUESTERS
    project_path = "job__project"
    serializer_class = ComparisonSerializer
    queryset = Layer.objects.select_related("job__dataset").order_by("job_id", "id")
    filterset_fields = ["job"]

    def list(self, request):
        # A page of layers in a fixed number of queries: units, vocabularies and verdicts fetched for all of them.
        layers = self.paginate_queryset(with_layer_units(self.filter_queryset(self.get_queryset())))
        stored = stored_verifications(layers)
        return self.get_paginated_response([comparison_payload(layer, stored[layer.pk]) for layer in layers])

    def retrieve(self, request, pk=None):
        return Response(comparison_payload(self.get_object()))


# --- exports and synonyms -----------------------------------------------------------------------


class ExportViewSet(ProjectScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Exports run in the background; poll the row for progress, then download the dated file."""

    write_capability = VIEW  # exports are results: every member may make one

    permission_classes = REQUESTERS
    serializer_class = ExportSerializer
    filterset_fields = ["kind", "status", "job", "layer", "batch"]
    queryset = ExportJob.objects.order_by("-created_at", "-id")

    def create(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            export = export_create(kind=v["kind"], job=v.get("job"), layer=v.get("layer"), batch=v.get("batch"),
                                   user=request.user)
        except ResultsError as exc:
            return _bad_request(exc)
        return Response(self.get_serializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                                  description="the export file"),
                              409: OpenApiResponse(DetailOut, description="not finished yet")})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        export = self.get_object()
        path = Path(settings.MEDIA_ROOT) / export.file if export.file else None
        if export.status != ExportJob.Status.SUCCEEDED or path is None or not path.is_file():
            return Response({"detail": f"Export {export.pk} is {export.status}; download it when it has succeeded."},
                            status=status.HTTP_409_CONFLICT)
        return FileResponse(open(path, "rb"), as_attachment=True, filename=export.filename)


class SynonymViewSet(ProjectScopedMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
                     viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = SynonymSerializer
    filterset_fields = ["dataset"]
    queryset = SynonymEntry.objects.order_by("dataset_id", "word")

    def create(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            entry = synonym_set(dataset=v["dataset"], word=v["word"], target=v["target"], user=request.user)
        except ResultsError as exc:
            return _bad_request(exc)
        return Response(self.get_serializer(entry).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        synonym_delete(entry=instance)
