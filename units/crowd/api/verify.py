"""API of verify HITs: publish them for chosen layers and label sources, and answer one (yes/no/unsure).

Claiming, returning and skipping are the labelling flow's own endpoints; `/api/assignments/next/`
says which kind of HIT it handed out (`hit.kind`, and `hit.proposed_label` for verify HITs)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate_site.roles import IsMember

from ..errors import CrowdError, InvalidAnswer, PublishError
from ..models import VERDICT_CHOICES, LabelSource
from ..publishing import PublishSettings
from ..verify import PROPOSED_SOURCES, hit_publish_verify, verdict_submit
from .serializers import DetailOut, HitBatchSerializer, PublishSerializer, VerdictOut, VerifyBatchOut
from .views import not_yours


class VerdictIn(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=VERDICT_CHOICES)


class VerifyPublishSerializer(PublishSerializer):
    sources = serializers.ListField(child=serializers.ChoiceField(choices=[(s, s) for s in PROPOSED_SOURCES]),
                                    required=False, default=[LabelSource.IOU], allow_empty=False)
    labels = serializers.DictField(child=serializers.CharField(max_length=200), required=False, default=dict,
                                   help_text="unit id -> label, for the requester source")
    reward = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, default="0.02")
    assignment_duration_seconds = serializers.IntegerField(required=False, default=5 * 60)

    def validate_labels(self, value: dict) -> dict:
        try:
            return {int(k): v for k, v in value.items()}
        except (TypeError, ValueError):
            raise serializers.ValidationError("Label keys are unit ids (integers).") from None


class VerdictView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=VerdictIn, responses={200: VerdictOut}, summary="Answer a verify HIT: yes, no or unsure")
    def post(self, request: Request, pk: int) -> Response:
        data = VerdictIn(data=request.data)
        if not data.is_valid():
            return not_yours(pk, request.user) or Response(
                {"detail": "The answer is not valid.", "errors": data.errors}, status=400)
        try:
            annotation = verdict_submit(assignment_id=pk, worker=request.user, verdict=data.validated_data["verdict"])
        except CrowdError as exc:
            body: dict = {"detail": str(exc)}
            if isinstance(exc, InvalidAnswer):
                body["errors"] = exc.errors
            return Response(body, status=exc.status_code)
        assignment = annotation.assignment
        return Response({"assignment": assignment.pk, "status": assignment.status, "verdict": annotation.verdict,
                         "work_seconds": assignment.work_seconds, "annotation": annotation.pk})


class VerifyPublishView(APIView):
    permission_classes = [IsAuthenticated, IsMember]

    @extend_schema(request=VerifyPublishSerializer,
                   responses={201: VerifyBatchOut,
                              200: OpenApiResponse(DetailOut, description="nothing new to publish"),
                              400: OpenApiResponse(DetailOut, description="cannot publish")},
                   summary="Publish verify HITs of chosen layers and label sources (no duplicates)")
    def post(self, request: Request) -> Response:
        data = VerifyPublishSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            fields = dict(data.validated_data)
            layers, sources, labels = fields.pop("layers"), fields.pop("sources"), fields.pop("labels")
            batch = hit_publish_verify(layers=layers, sources=sources, labels=labels,
                                       settings=PublishSettings(**fields), created_by=request.user)
        except PublishError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if not batch.pk:
            return Response({"detail": str(batch.report)}, status=status.HTTP_200_OK)
        return Response({**HitBatchSerializer(batch).data, "report": str(batch.report)},
                        status=status.HTTP_201_CREATED)
