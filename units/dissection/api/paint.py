"""The paint endpoint: POST a sample, units and a region; get the before/after pictures (requesters only).

Nothing is stored, so a POST is safe to repeat. Pictures come back as PNG data URLs, so the
page shows them without a second request and nothing lands in MEDIA_ROOT.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate_site.roles import IsMember
from units.dissection.errors import DissectionError
from units.dissection.models import DissectionJob
from units.dissection.paint import (
    DEFAULT_LABEL_LIMIT, LABEL_SOURCES, MAX_SEED, MODES, PaintRequest, paint_edit, paint_payload,
)
from units.projects.access import scope


class PaintRequestSerializer(serializers.Serializer):
    layer = serializers.CharField(max_length=200)
    seed = serializers.IntegerField(min_value=0, max_value=MAX_SEED,
                                    help_text="Sample number: z of sample i of the job.")
    mode = serializers.ChoiceField(choices=MODES, default="remove")
    units = serializers.ListField(child=serializers.IntegerField(), required=False, default=list, max_length=4096,
                                  help_text="Unit numbers as pages show them (from 1).")
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=100,
                                  help_text="Also take the units labelled so (e.g. 7).")
    label_source = serializers.ChoiceField(choices=LABEL_SOURCES, default="any",
                                           help_text="Which label `label` matches: the IoU label, the crowd's, or "
                                                     "either.")
    limit = serializers.IntegerField(min_value=1, default=DEFAULT_LABEL_LIMIT,
                                     help_text="At most this many labelled units, best IoU first.")
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4, required=False,
                                help_text="Region (top, left, bottom, right) in image pixels; bottom/right exclusive.")
    grid = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=1),
                                                             max_length=1024), required=False, max_length=1024,
                                 help_text="Region painted on a coarse grid (rows of 0/1) that tiles the image.")


class PaintUnitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    iou_label = serializers.CharField()
    iou_score = serializers.FloatField()
    crowd_label = serializers.CharField()
    url = serializers.CharField()


class PaintResponseSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    layer = serializers.CharField()
    seed = serializers.IntegerField()
    mode = serializers.CharField()
    units = PaintUnitSerializer(many=True)
    values = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    before = serializers.CharField(help_text="data:image/png;base64,...")
    after = serializers.CharField()
    seconds = serializers.FloatField()


class PaintView(APIView):
    permission_classes = [IsMember]

    @extend_schema(request=PaintRequestSerializer, responses=PaintResponseSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        """Edit one generated image of a generator job: remove or insert units in a region."""
        job = get_object_or_404(scope(DissectionJob.objects.select_related("network"), request.user), pk=job_id)
        params = PaintRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            result = paint_edit(job=job, request=PaintRequest(
                layer_name=data["layer"], seed=data["seed"], mode=data["mode"], units=data["units"],
                label=data["label"], label_source=data["label_source"], limit=data["limit"], box=data.get("box"),
                grid=data.get("grid"),
            ))
        except DissectionError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(paint_payload(result))
