"""REST API of the crowd: the labelling flow (next, submit, return, skip; it calls the same services
as the pages), HIT batches (publish), HITs, assignments and annotations. Requesters see everything;
annotators only their own assignments and annotations."""
from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from annotate_site.roles import IsMember
from units.dissection.api.filters import id_filter, id_or_name_filter, strict_boolean
from units.projects.access import is_site_admin, project_ids
from units.projects.api.fields import ProjectScopedMixin

from ..errors import CrowdError, InvalidAnswer, PublishError
from ..models import Annotation, Assignment, Hit, HitBatch
from ..publishing import PublishSettings, hit_publish
from ..selectors import hit_pictures
from ..services import annotation_submit, assignment_claim, assignment_return, hit_skip
from .serializers import (
    AnnotationSerializer,
    AssignmentOut,
    AssignmentSerializer,
    DetailOut,
    HitBatchSerializer,
    HitSerializer,
    PublishSerializer,
    ReturnOut,
    SkipOut,
    SubmitIn,
    SubmitOut,
)

REQUESTERS = [IsAuthenticated, IsMember]


def _error(exc: CrowdError) -> Response:
    body: dict = {"detail": str(exc)}
    if isinstance(exc, InvalidAnswer):
        body["errors"] = exc.errors
    return Response(body, status=exc.status_code)


def not_yours(pk: int, worker: User) -> Response | None:
    """A 404 for an id that is not one of the worker's assignments, before its body is judged: someone
    else's assignment answers like an unknown id, whatever was sent (valid answers reach the service,
    which says the same)."""
    if Assignment.objects.filter(pk=pk, worker_id=worker.pk).exists():
        return None
    return Response({"detail": f"There is no assignment {pk}."}, status=404)


def assignment_payload(request: Request, assignment: Assignment) -> dict:
    hit = assignment.hit
    unit = hit.unit
    return {
        "assignment": {"id": assignment.pk, "status": assignment.status, "accepted_at": assignment.accepted_at,
                       "deadline": assignment.deadline},
        "hit": {"id": hit.pk, "reward": str(hit.reward), "expires_at": hit.expires_at,
                "max_assignments": hit.max_assignments, "kind": hit.kind, "proposed_label": hit.proposed_label},
        "unit": {"id": unit.pk, "layer": unit.layer.name, "index": unit.index},
        # Opaque ids and URLs (annotate_site/media.py): neither tells a sentinel from a top exemplar.
        "exemplars": [
            {"id": ex.pk, "picture_url": request.build_absolute_uri(ex.picture_url),
             "plain_url": request.build_absolute_uri(ex.plain_url)}
            for ex in hit_pictures(hit)
        ],
        "deadline": assignment.deadline,
    }


class NextAssignmentView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "claim"

    @extend_schema(request=None, responses={201: AssignmentOut, 204: None})
    def post(self, request: Request) -> Response:
        try:
            assignment = assignment_claim(worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(assignment_payload(request, assignment), status=status.HTTP_201_CREATED)


class SubmitView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submit"

    @extend_schema(request=SubmitIn, responses={200: SubmitOut})
    def post(self, request: Request, pk: int) -> Response:
        data = SubmitIn(data=request.data)
        if not data.is_valid():
            return not_yours(pk, request.user) or Response(
                {"detail": "The answer is not valid.", "errors": data.errors}, status=400)
        answer = dict(data.validated_data)
        try:
            answer["non_fitting"] = _exemplar_ids(pk, request.user, answer["non_fitting"])
            annotation = annotation_submit(assignment_id=pk, worker=request.user, **answer)
        except CrowdError as exc:
            return _error(exc)
        assignment = annotation.assignment
        return Response({"assignment": assignment.pk, "status": assignment.status,
                         "work_seconds": assignment.work_seconds, "annotation": annotation.pk})


def _exemplar_ids(assignment_id: int, worker: User, marked: list[str]) -> list[int]:
    """The annotator marks pictures by the ids the payload gave (public ids); the services want exemplar
    pks. An id that is not a picture of this HIT is refused with its value, and nothing is stored."""
    if not marked:
        return []
    assignment = Assignment.objects.filter(pk=assignment_id, worker=worker).select_related("hit__batch").first()
    if assignment is None:
        return []  # not this worker's assignment: the service gives its usual "not yours" answer
    shown = {ex.pk: ex.exemplar_id for ex in hit_pictures(assignment.hit)}
    strangers = [m for m in marked if m not in shown]
    if strangers:
        raise InvalidAnswer({"non_fitting": [f"Images {', '.join(strangers)} are not shown in this HIT."]})
    return [shown[m] for m in marked]


class ReturnView(APIView):
    @extend_schema(request=None, responses={200: ReturnOut})
    def post(self, request: Request, pk: int) -> Response:
        try:
            assignment = assignment_return(assignment_id=pk, worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        return Response({"assignment": assignment.pk, "status": assignment.status})


class SkipView(APIView):
    @extend_schema(request=None, responses={200: SkipOut})
    def post(self, request: Request, pk: int) -> Response:
        try:
            skip = hit_skip(assignment_id=pk, worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        return Response({"assignment": pk, "status": Assignment.Status.RETURNED, "skipped_hit": skip.hit_id})

# --- HIT batches, HITs, assignments ----------------------------------------------------------------

@extend_schema_view(
    create=extend_schema(request=PublishSerializer,
                         responses={201: HitBatchSerializer,
                                    200: OpenApiResponse(DetailOut, description="nothing new to publish"),
                                    400: OpenApiResponse(DetailOut, description="cannot publish")},
                         summary="Publish the units of chosen layers as HITs (no duplicates)"),
)
class HitBatchViewSet(ProjectScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    serializer_class = HitBatchSerializer
    queryset = HitBatch.objects.prefetch_related("layers").annotate(n_hits=Count("hits")).order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = PublishSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)

        fields = dict(data.validated_data)
        layers, pool = fields.pop("layers"), fields.pop("pool", None)
        try:
            batch = hit_publish(layers=layers, settings=PublishSettings(**fields), created_by=request.user, pool=pool)
        except PublishError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        report = getattr(batch, "report", None)
        if not batch.pk:  # nothing new to publish: the service kept no batch
            return Response({"detail": str(report) if report else "No HIT was created."}, status=status.HTTP_200_OK)
        return Response(HitBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class HitFilter(django_filters.FilterSet):
    layer = id_or_name_filter("unit__layer", "unit__layer__name", "layer")
    job = id_filter("unit__layer__job")
    is_gold = strict_boolean("is_gold")

    class Meta:
        model = Hit
        fields = ["batch", "unit", "status", "is_gold", "layer", "job", "kind", "label_source"]


class HitViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = REQUESTERS
    project_path = "batch__project"
    serializer_class = HitSerializer
    filterset_class = HitFilter
    queryset = Hit.objects.select_related("unit__layer").order_by("id")


class _OwnWorkUnlessRequester:
    """Read access for any signed-in user: their own rows (`owner_field` is themselves) and the rows
    of projects they are a member of; site admins see all. One place for the rule, so no viewset can
    forget the filter."""

    permission_classes = [IsAuthenticated]
    owner_field: str
    project_path: str

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        qs = self.base_queryset()
        user = self.request.user
        if is_site_admin(user):
            return qs
        return qs.filter(Q(**{self.owner_field: user}) | Q(**{f"{self.project_path}__in": project_ids(user)}))


class AssignmentFilter(django_filters.FilterSet):
    worker = django_filters.CharFilter(field_name="worker__username")
    layer = id_filter("hit__unit__layer")
    batch = id_filter("hit__batch")

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
    project_path = "hit__batch__project"

    def base_queryset(self) -> QuerySet:
        return Assignment.objects.select_related("worker").order_by("id")


# --- annotations ----------------------------------------------------------------------------

class AnnotationFilter(django_filters.FilterSet):
    unit = id_filter("assignment__hit__unit")
    layer = id_filter("assignment__hit__unit__layer")
    hit = id_filter("assignment__hit")
    worker = django_filters.CharFilter(field_name="assignment__worker__username")

    class Meta:
        model = Annotation
        fields = ["category", "unit", "layer", "hit", "worker", "verdict"]


class AnnotationViewSet(_OwnWorkUnlessRequester, viewsets.ReadOnlyModelViewSet):
    """Requesters see every annotation; an annotator sees only their own."""

    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter
    queryset = Annotation.objects.none()  # tells the schema generator the model
    owner_field = "assignment__worker"
    project_path = "assignment__hit__batch__project"

    def base_queryset(self) -> QuerySet:
        return Annotation.objects.select_related("assignment__worker", "assignment__hit").prefetch_related(
            "non_fitting").order_by("id")


