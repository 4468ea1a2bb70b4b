"""REST API of results: HIT batches (publish), HITs, assignments, annotations, aggregated labels,
comparisons, aggregation runs and exports. Requesters see everything; annotators only their own annotations."""
from __future__ import annotations

from pathlib import Path

import django_filters
from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from units.api.filters import strict_boolean
from units.crowd.models import Annotation, Assignment, Hit, HitBatch
from units.models import DissectionJob, Layer
from units.roles import IsRequester, is_requester

from .models import AggregationRun, ExportJob, SynonymEntry, UnitAggregate
from .selectors import detector_counts, layer_comparison
from .services import ResultsError, export_create, synonym_delete, synonym_set

REQUESTERS = [IsAuthenticated, IsRequester]


def _bad_request(exc: Exception) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


# --- HIT batches, HITs, assignments ----------------------------------------------------------------

class HitBatchSerializer(serializers.ModelSerializer):
    layers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    hits = serializers.IntegerField(source="hits.count", read_only=True)

    class Meta:
        model = HitBatch
        fields = ["id", "name", "layers", "assignments_per_hit", "reward", "lifetime_seconds",
                  "assignment_duration_seconds", "auto_approval_delay_seconds", "exemplars_shown", "sentinels",
                  "created_at", "hits"]


class PublishSerializer(serializers.Serializer):
    layers = serializers.PrimaryKeyRelatedField(many=True, queryset=Layer.objects.select_related("job"))
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    assignments_per_hit = serializers.IntegerField(required=False, default=3)
    reward = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, default="0.05")
    lifetime_seconds = serializers.IntegerField(required=False, default=7 * 24 * 3600)
    assignment_duration_seconds = serializers.IntegerField(required=False, default=15 * 60)
    auto_approval_delay_seconds = serializers.IntegerField(required=False, default=3 * 24 * 3600)
    exemplars_shown = serializers.IntegerField(required=False, default=15)
    sentinels = serializers.IntegerField(required=False, default=0)
    skip_dead = serializers.BooleanField(required=False, default=True)


@extend_schema_view(
    create=extend_schema(request=PublishSerializer, responses={201: HitBatchSerializer, 200: HitBatchSerializer,
                                                                400: OpenApiResponse(description="cannot publish")},
                         summary="Publish the units of chosen layers as HITs (no duplicates)"),
)
class HitBatchViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = HitBatchSerializer
    queryset = HitBatch.objects.prefetch_related("layers").order_by("-created_at", "-id")

    def create(self, request, *args, **kwargs):
        data = PublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from units.crowd.publishing import PublishError, hit_publish  # PLATFORM's service, imported lazily

        options = dict(data.validated_data)
        try:
            batch = hit_publish(created_by=request.user, **options)
        except PublishError as exc:
            return _bad_request(exc)
        report = getattr(batch, "report", None)
        if not batch.pk:  # nothing new to publish: the service kept no batch
            return Response({"detail": str(report) if report else "No HIT was created."}, status=status.HTTP_200_OK)
        return Response(HitBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class HitSerializer(serializers.ModelSerializer):
    layer = serializers.CharField(source="unit.layer.name", read_only=True)
    unit_index = serializers.IntegerField(source="unit.index", read_only=True)

    class Meta:
        model = Hit
        fields = ["id", "batch", "unit", "layer", "unit_index", "max_assignments", "reward", "lifetime_seconds",
                  "assignment_duration_seconds", "auto_approval_delay_seconds", "exemplars_shown", "status",
                  "is_gold", "created_at", "expires_at"]


class HitFilter(django_filters.FilterSet):
    layer = django_filters.NumberFilter(field_name="unit__layer")
    job = django_filters.NumberFilter(field_name="unit__layer__job")
    is_gold = strict_boolean("is_gold")

    class Meta:
        model = Hit
        fields = ["batch", "unit", "status", "is_gold", "layer", "job"]


class HitViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = HitSerializer
    filterset_class = HitFilter
    queryset = Hit.objects.select_related("unit__layer").order_by("id")


class AssignmentSerializer(serializers.ModelSerializer):
    worker = serializers.CharField(source="worker.username", read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "hit", "worker", "status", "accepted_at", "deadline", "submitted_at", "approved_at",
                  "rejected_at", "auto_approve_at", "feedback", "work_seconds"]


class _OwnWorkUnlessRequester:
    """Read access for any signed-in user: requesters see every row, an annotator only rows whose
    `owner_field` is themselves. One place for the rule, so no viewset can forget the filter."""

    permission_classes = [IsAuthenticated]
    owner_field: str

    def base_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        qs = self.base_queryset()
        if is_requester(self.request.user):
            return qs
        return qs.filter(**{self.owner_field: self.request.user})


class AssignmentFilter(django_filters.FilterSet):
    worker = django_filters.CharFilter(field_name="worker__username")
    layer = django_filters.NumberFilter(field_name="hit__unit__layer")
    batch = django_filters.NumberFilter(field_name="hit__batch")

    class Meta:
        model = Assignment
        fields = ["hit", "status", "worker", "layer", "batch"]


class AssignmentViewSet(_OwnWorkUnlessRequester, viewsets.ReadOnlyModelViewSet):
    """Requesters see every assignment; an annotator sees only their own (to act on one they use
    /api/assignments/next/ and friends)."""

    serializer_class = AssignmentSerializer
    filterset_class = AssignmentFilter
    queryset = Assignment.objects.none()  # tells the schema generator the model
    owner_field = "worker"

    def base_queryset(self):
        return Assignment.objects.select_related("worker").order_by("id")


# --- annotations ----------------------------------------------------------------------------

class AnnotationSerializer(serializers.ModelSerializer):
    hit = serializers.IntegerField(source="assignment.hit_id", read_only=True)
    unit = serializers.IntegerField(source="assignment.hit.unit_id", read_only=True)
    worker = serializers.CharField(source="assignment.worker.username", read_only=True)
    status = serializers.CharField(source="assignment.status", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "assignment", "hit", "unit", "worker", "status", "word", "category", "description",
                  "confidence", "non_fitting", "created_at"]


class AnnotationFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="assignment__hit__unit")
    layer = django_filters.NumberFilter(field_name="assignment__hit__unit__layer")
    hit = django_filters.NumberFilter(field_name="assignment__hit")
    worker = django_filters.CharFilter(field_name="assignment__worker__username")

    class Meta:
        model = Annotation
        fields = ["category", "unit", "layer", "hit", "worker"]


class AnnotationViewSet(_OwnWorkUnlessRequester, viewsets.ReadOnlyModelViewSet):
    """Requesters see every annotation; an annotator sees only their own."""

    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter
    queryset = Annotation.objects.none()  # tells the schema generator the model
    owner_field = "assignment__worker"

    def base_queryset(self):
        return Annotation.objects.select_related("assignment__worker", "assignment__hit").prefetch_related(
            "non_fitting").order_by("id")


# --- aggregated labels, runs, comparisons ---------------------------------------------------------

class LabelSerializer(serializers.ModelSerializer):
    layer = serializers.IntegerField(source="unit.layer_id", read_only=True)
    layer_name = serializers.CharField(source="unit.layer.name", read_only=True)
    unit_index = serializers.IntegerField(source="unit.index", read_only=True)
    iou_label = serializers.CharField(source="unit.iou_label", read_only=True)
    iou_category = serializers.CharField(source="unit.iou_category", read_only=True)
    iou_score = serializers.FloatField(source="unit.iou_score", read_only=True)

    class Meta:
        model = UnitAggregate
        fields = ["id", "unit", "layer", "layer_name", "unit_index", "crowd_word", "concept", "category_mv",
                  "category_ds", "category_ds_probability", "agreement", "category_agreement", "precision",
                  "interpretable", "n_annotations", "iou_label", "iou_category", "iou_score", "word_match",
                  "category_match", "run", "updated_at"]


class LabelFilter(django_filters.FilterSet):
    layer = django_filters.NumberFilter(field_name="unit__layer")
    job = django_filters.NumberFilter(field_name="unit__layer__job")
    category = django_filters.CharFilter(field_name="category_mv")
    word = django_filters.CharFilter(field_name="crowd_word", lookup_expr="iexact")
    min_agreement = django_filters.NumberFilter(field_name="agreement", lookup_expr="gte")
    interpretable = strict_boolean("interpretable")
    word_match = strict_boolean("word_match")
    category_match = strict_boolean("category_match")

    class Meta:
        model = UnitAggregate
        fields = ["layer", "job", "interpretable", "category", "word", "word_match", "category_match", "min_agreement"]


class LabelViewSet(viewsets.ReadOnlyModelViewSet):
    """The crowd's aggregated label per unit."""

    permission_classes = REQUESTERS
    serializer_class = LabelSerializer
    filterset_class = LabelFilter
    queryset = UnitAggregate.objects.select_related("unit__layer").order_by("unit__layer_id", "unit__index")


class AggregationRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AggregationRun
        fields = ["id", "layer", "batch", "method", "parameters", "status", "n_units", "n_annotations", "alpha",
                  "summary", "error_message", "started_at", "finished_at"]


class AggregateRequestSerializer(serializers.Serializer):
    layer = serializers.PrimaryKeyRelatedField(queryset=Layer.objects.all(), required=False)
    job = serializers.PrimaryKeyRelatedField(queryset=DissectionJob.objects.all(), required=False)
    batch = serializers.PrimaryKeyRelatedField(queryset=HitBatch.objects.all(), required=False)

    def validate(self, attrs):
        if len([k for k in ("layer", "job", "batch") if attrs.get(k)]) != 1:
            raise serializers.ValidationError("Give exactly one of layer, job or batch.")
        return attrs


@extend_schema_view(
    create=extend_schema(request=AggregateRequestSerializer,
                         responses={202: inline_serializer("AggregateQueued", {"queued_layers": serializers.ListField(
                             child=serializers.IntegerField())})},
                         summary="Aggregate a layer, a job's layers or a batch now (runs in the background)"),
)
class AggregationRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = AggregationRunSerializer
    filterset_fields = ["layer", "batch", "status"]
    queryset = AggregationRun.objects.order_by("-started_at", "-id")

    def create(self, request, *args, **kwargs):
        data = AggregateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from tasks.results import aggregate_batch, aggregate_layer

        v = data.validated_data
        if v.get("batch"):
            aggregate_batch.delay(v["batch"].pk)
            layers = list(Layer.objects.filter(units__hits__batch=v["batch"]).distinct().values_list("pk", flat=True))
        else:
            layers = [v["layer"].pk] if v.get("layer") else list(v["job"].layer_set.values_list("pk", flat=True))
            for layer_id in layers:
                aggregate_layer.delay(layer_id)
        return Response({"queued_layers": layers}, status=status.HTTP_202_ACCEPTED)


class ComparisonSerializer(serializers.Serializer):
    layer = serializers.IntegerField()
    layer_name = serializers.CharField()
    job = serializers.IntegerField()
    units = serializers.IntegerField()
    both = serializers.IntegerField()
    human_only = serializers.IntegerField()
    iou_only = serializers.IntegerField()
    neither = serializers.IntegerField()
    word_matches = serializers.IntegerField()
    category_matches = serializers.IntegerField()
    confusion = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    gold_units = serializers.IntegerField()
    crowd_accuracy = serializers.FloatField(allow_null=True)
    iou_accuracy = serializers.FloatField(allow_null=True)
    detectors = serializers.DictField()


def comparison_payload(layer: Layer) -> dict:
    return {"layer": layer.pk, "layer_name": layer.name, "job": layer.job_id, **layer_comparison(layer).as_dict(),
            "detectors": detector_counts(layer)}


class ComparisonViewSet(viewsets.GenericViewSet):
    """Per layer: human-only / IoU-only / both / neither, match counts, confusion table, accuracy vs gold."""

    permission_classes = REQUESTERS
    serializer_class = ComparisonSerializer
    queryset = Layer.objects.select_related("job__dataset").order_by("job_id", "id")
    filterset_fields = ["job"]

    def list(self, request):
        layers = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([comparison_payload(layer) for layer in layers])

    def retrieve(self, request, pk=None):
        return Response(comparison_payload(self.get_object()))


# --- exports and synonyms -----------------------------------------------------------------------

class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    filename = serializers.CharField(read_only=True)

    class Meta:
        model = ExportJob
        fields = ["id", "kind", "job", "layer", "batch", "status", "progress", "filename", "download_url",
                  "error_message", "created_at", "finished_at"]
        read_only_fields = ["status", "progress", "error_message", "created_at", "finished_at"]

    def get_download_url(self, obj: ExportJob) -> str | None:
        if obj.status != ExportJob.Status.SUCCEEDED:
            return None
        request = self.context.get("request")
        url = f"/api/exports/{obj.pk}/download/"
        return request.build_absolute_uri(url) if request else url


class ExportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Exports run in the background; poll the row for progress, then download the dated file."""

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

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="the export file"),
                              409: OpenApiResponse(description="not finished yet")})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        export = self.get_object()
        path = Path(settings.MEDIA_ROOT) / export.file if export.file else None
        if export.status != ExportJob.Status.SUCCEEDED or path is None or not path.is_file():
            return Response({"detail": f"Export {export.pk} is {export.status}; download it when it has succeeded."},
                            status=status.HTTP_409_CONFLICT)
        return FileResponse(open(path, "rb"), as_attachment=True, filename=export.filename)


class SynonymSerializer(serializers.ModelSerializer):
    class Meta:
        model = SynonymEntry
        fields = ["id", "dataset", "word", "target", "created_at"]
        read_only_fields = ["created_at"]
        validators: list = []  # update_or_create in the service replaces an existing word


class SynonymViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
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
