"""REST API of the labelling flow; it calls the same services as the pages."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import CrowdError, InvalidAnswer
from .models import CATEGORY_CHOICES, Assignment
from .selectors import hit_exemplars
from .services import annotation_submit, assignment_claim, assignment_return, hit_skip


def _error(exc: CrowdError) -> Response:
    body: dict = {"detail": str(exc)}
    if isinstance(exc, InvalidAnswer):
        body["errors"] = exc.errors
    return Response(body, status=exc.status_code)


class ExemplarOut(serializers.Serializer):
    id = serializers.IntegerField()
    picture_url = serializers.CharField()
    plain_url = serializers.CharField()


class AssignmentOut(serializers.Serializer):
    """An assignment with everything needed to label it (sentinels are not told apart)."""

    assignment = serializers.DictField()
    hit = serializers.DictField()
    unit = serializers.DictField()
    exemplars = ExemplarOut(many=True)
    deadline = serializers.DateTimeField()


def assignment_payload(request: Request, assignment: Assignment) -> dict:
    hit = assignment.hit
    unit = hit.unit
    return {
        "assignment": {"id": assignment.pk, "status": assignment.status, "accepted_at": assignment.accepted_at,
                       "deadline": assignment.deadline},
        "hit": {"id": hit.pk, "reward": str(hit.reward), "expires_at": hit.expires_at,
                "max_assignments": hit.max_assignments},
        "unit": {"id": unit.pk, "layer": unit.layer.name, "index": unit.index},
        "exemplars": [
            {"id": ex.pk, "picture_url": request.build_absolute_uri(ex.picture_url),
             "plain_url": request.build_absolute_uri(ex.plain_url)}
            for ex in hit_exemplars(hit)
        ],
        "deadline": assignment.deadline,
    }


class SubmitIn(serializers.Serializer):
    word = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    category = serializers.ChoiceField(choices=CATEGORY_CHOICES)
    non_fitting = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    confidence = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=5)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class NextAssignmentView(APIView):
    @extend_schema(request=None, responses={201: AssignmentOut, 204: None})
    def post(self, request: Request) -> Response:
        try:
            assignment = assignment_claim(worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment = Assignment.objects.select_related("hit__unit__layer", "hit__batch").get(pk=assignment.pk)
        return Response(assignment_payload(request, assignment), status=status.HTTP_201_CREATED)


class SubmitView(APIView):
    @extend_schema(request=SubmitIn, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        data = SubmitIn(data=request.data)
        if not data.is_valid():
            return Response({"detail": "The answer is not valid.", "errors": data.errors}, status=400)
        try:
            annotation = annotation_submit(assignment_id=pk, worker=request.user, **data.validated_data)
        except CrowdError as exc:
            return _error(exc)
        assignment = annotation.assignment
        return Response({"assignment": assignment.pk, "status": assignment.status,
                         "work_seconds": assignment.work_seconds, "annotation": annotation.pk})


class ReturnView(APIView):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        try:
            assignment = assignment_return(assignment_id=pk, worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        return Response({"assignment": assignment.pk, "status": assignment.status})


class SkipView(APIView):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        try:
            skip = hit_skip(assignment_id=pk, worker=request.user)
        except CrowdError as exc:
            return _error(exc)
        return Response({"assignment": pk, "status": Assignment.Status.RETURNED, "skipped_hit": skip.hit_id})
