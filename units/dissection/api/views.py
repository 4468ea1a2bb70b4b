"""REST API of the compute side; requesters only (annotators label through the crowd API).

Writes go through the same services as the pages: a bad request comes back as a 400 with
the service's message, never a half-written row.
"""
from __future__ import annotations

import django_filters
from django.db.models import Count, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from units.dissection import selectors
from units.dissection.models import DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit
from annotate_site.roles import IsMember
from units.projects.access import WORK, is_site_admin, project_ids, scope
from units.projects.api.fields import ProjectScopedMixin
from units.dissection.services import (
    DatasetSource,
    DissectionError,
    JobSettings,
    NetworkInput,
    dataset_register,
    job_create,
    job_start,
    network_register,
)

from .filters import id_filter, id_or_name_filter, strict_boolean
from .serializers import (
    DatasetSerializer,
    ExemplarSerializer,
    JobSerializer,
    JobStatusSerializer,
    LayerSerializer,
    LayerTableSerializer,
    ArchitectureLayerTableSerializer,
    NetworkSerializer,
    UnitSerializer,
)


def _refused(exc: Exception) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class _RequesterViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Rows of the caller's projects only (others answer 404); changing one needs the work capability."""

    permission_classes = [IsMember]


class NetworkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _RequesterViewSet):
    queryset = Network.objects.order_by("name")
    serializer_class = NetworkSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        upload = data.get("checkpoint")
        try:
            serializer.instance = network_register(
                project=data["project"], name=data["name"], architecture=data["architecture"], checkpoint=upload,
                checkpoint_size=upload.size if upload else None,
                inputs=NetworkInput(num_classes=data.get("num_classes"), class_names=data.get("class_names") or (),
                                    mean=data.get("mean") or (), std=data.get("std") or (),
                                    input_size=data.get("input_size")),
                description=data.get("description", ""), created_by=self.request.user,
            )
        except DissectionError as exc:
            raise _refused(exc) from None

    @extend_schema(
        parameters=[
            OpenApiParameter("dataset", int, description="plan the chosen layers on this dataset (its index only)"),
            OpenApiParameter("layers", str, description="comma-separated module paths to plan"),
            OpenApiParameter("token_grid", str, description="HEIGHTxWIDTH: read token layers as this grid"),
        ],
        responses=LayerTableSerializer,
    )
    @action(detail=True, methods=["get"])
    def layers(self, request, pk=None) -> Response:
        """Every layer with its output shape, unit count and how it is read (a shape probe, no image read);
        with `dataset` and `layers`, the plan: passes, disk, memory and the estimated forward time."""
        from units.dissection.layer_picker import network_layer_table

        dataset_id = request.query_params.get("dataset")
        dataset = None
        if dataset_id:
            usable = scope(ProbeDataset.objects.all(), request.user)  # another project's dataset does not exist here
            dataset = usable.filter(pk=dataset_id).first() if dataset_id.isdigit() and len(dataset_id) < 19 else None
            if dataset is None:
                raise _refused(DissectionError(f"No dataset with id {dataset_id!r}; list them at /api/datasets/."))
        names = [x for x in request.query_params.get("layers", "").replace(",", " ").split() if x]
        try:
            return Response(network_layer_table(network=self.get_object(), dataset=dataset, layers=names,
                                                token_grid=request.query_params.get("token_grid", "")[:16]))
        except DissectionError as exc:
            raise _refused(exc) from None


class MayRegister(BasePermission):
    message = "Listing an architecture's layers is for those who may register networks (requesters of a project)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return is_site_admin(user) or project_ids(user, WORK).exists()


class ArchitectureLayersView(APIView):
    """The layer table of an architecture before it is registered (the registration form's live table)."""

    permission_classes = [IsAuthenticated, MayRegister]

    @extend_schema(
        parameters=[
            OpenApiParameter("architecture", str, required=True,
                             description="a catalogue name (resnet50, vit_b_16, ...), timm:<name> or mixturenet"),
            OpenApiParameter("input_size", int, description="probe at N x N px (default: the architecture's size)"),
        ],
        responses={200: ArchitectureLayerTableSerializer},
    )
    def get(self, request: Request) -> Response:
        """Every layer with its output shape, unit count and how it is read, from a shape probe (no weights, no
        image); 400 names an unknown architecture with close names."""
        from units.dissection.layer_picker import architecture_layer_table

        raw_size = request.query_params.get("input_size", "").strip()
        if raw_size and not (raw_size.isdigit() and len(raw_size) < 6):
            raise _refused(DissectionError(f"input_size must be a whole number of pixels, got {raw_size!r}."))
        try:
            table = architecture_layer_table(architecture=request.query_params.get("architecture", "")[:200],
                                             input_size=int(raw_size) if raw_size else None)
        except DissectionError as exc:
            raise _refused(exc) from None
        return Response(table)


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _RequesterViewSet):
    queryset = ProbeDataset.objects.annotate(num_concepts=Count("concepts")).order_by("name")
    serializer_class = DatasetSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        archive = data.get("archive")
        try:
            serializer.instance = dataset_register(
                project=data["project"],
                name=data["name"],
                kind=data["kind"],
                source=DatasetSource(path=data.get("path", ""), archive=archive,
                                     archive_size=archive.size if archive else None),
                image_size=data.get("image_size"),
                description=data.get("description", ""),
                created_by=self.request.user,
            )
        except DissectionError as exc:
            raise _refused(exc) from None


class JobFilter(django_filters.FilterSet):
    class Meta:
        model = DissectionJob
        fields = ["status", "network", "dataset"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _RequesterViewSet):
    queryset = DissectionJob.objects.select_related("network", "dataset").order_by("-created_at")
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        try:
            job = job_create(
                network=data["network"], dataset=data["dataset"],
                options=JobSettings(
                    data["layers"], top_k=data.get("top_k", 15), quantile=data.get("quantile", 0.005),
                    iou_rule=data.get("iou_rule", "lite"), batch_size=data.get("batch_size", 32),
                    shards=data.get("shards", 1), samples=data.get("samples"), sample_seed=data.get("sample_seed", 0),
                    token_grid=data.get("token_grid", ""),
                ),
                created_by=self.request.user,
            )
            if data.get("start"):
                job = job_start(job=job)
        except DissectionError as exc:
            raise _refused(exc) from None
        serializer.instance = job

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Queue the job (or run it again); 400 while it runs or once its units have HITs."""
        try:
            job = job_start(job=self.get_object())
        except DissectionError as exc:
            raise _refused(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=JobStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Status, stage and progress (0..1), read from the job row."""
        return Response(selectors.job_status(self.get_object()))


class LayerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _RequesterViewSet):
    queryset = Layer.objects.order_by("job_id", "id")
    project_path = "job__project"
    serializer_class = LayerSerializer
    filterset_fields = ["job", "name"]


class UnitFilter(django_filters.FilterSet):
    label = django_filters.CharFilter(field_name="iou_label", lookup_expr="iexact")
    category = django_filters.CharFilter(field_name="iou_category", lookup_expr="iexact")
    iou_min = django_filters.NumberFilter(field_name="iou_score", lookup_expr="gte")
    iou_max = django_filters.NumberFilter(field_name="iou_score", lookup_expr="lte")
    job = id_filter("layer__job_id")
    layer = id_or_name_filter("layer", "layer__name", "layer")
    layer_name = django_filters.CharFilter(field_name="layer__name")
    dead = django_filters.BooleanFilter(method="filter_dead")
    # The crowd's side, from the results app's aggregate of the unit's annotations.
    interpretable = strict_boolean("aggregate__interpretable")
    crowd_label = django_filters.CharFilter(field_name="aggregate__crowd_word", lookup_expr="iexact")
    crowd_category = django_filters.CharFilter(field_name="aggregate__category", lookup_expr="iexact")

    class Meta:
        model = Unit
        fields = ["layer", "is_gold"]

    def filter_dead(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(max_activation__lte=0) if value else queryset.filter(max_activation__gt=0)


class UnitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _RequesterViewSet):
    queryset = (Unit.objects.select_related("layer").prefetch_related("concept_scores__concept")
                .order_by("layer_id", "index"))
    project_path = "layer__job__project"
    serializer_class = UnitSerializer
    filterset_class = UnitFilter


class ExemplarViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _RequesterViewSet):
    queryset = Exemplar.objects.order_by("unit_id", "kind", "rank")
    project_path = "unit__layer__job__project"
    serializer_class = ExemplarSerializer
    filterset_fields = ["unit", "kind"]
