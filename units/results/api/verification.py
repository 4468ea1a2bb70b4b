"""API of verify HITs' results: each proposed label's verdict, and the per-layer human-judged precision
table (IoU labels beside the crowd's, with the units judged). Requesters only, like the rest of results."""
from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from annotate_site.roles import IsMember
from units.dissection.api.filters import id_filter, strict_boolean
from units.projects.access import scope
from units.projects.api.fields import ProjectScopedMixin
from units.dissection.models import Layer

from ..models import UnitVerification
from ..verification import verification_table
from .serializers import PrecisionRowSerializer


class VerificationSerializer(serializers.ModelSerializer):
    layer = serializers.IntegerField(source="unit.layer_id", read_only=True)
    unit_index = serializers.IntegerField(source="unit.index", read_only=True)

    class Meta:
        model = UnitVerification
        fields = ["id", "unit", "layer", "unit_index", "source", "label", "n_yes", "n_no", "n_unsure",
                  "accepted_mv", "accepted_ds", "ds_probability", "agreement", "run", "updated_at"]


class VerificationFilter(django_filters.FilterSet):
    layer = id_filter("unit__layer")
    job = id_filter("unit__layer__job")
    accepted_mv = strict_boolean("accepted_mv")

    class Meta:
        model = UnitVerification
        fields = ["layer", "job", "unit", "source", "accepted_mv"]


class VerificationViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Verdicts of proposed labels; `/precision/?layer=ID` gives the layer's table."""

    permission_classes = [IsAuthenticated, IsMember]
    serializer_class = VerificationSerializer
    filterset_class = VerificationFilter
    queryset = UnitVerification.objects.select_related("unit").order_by("unit__layer_id", "unit__index", "source")

    @extend_schema(responses={200: PrecisionRowSerializer(many=True)},
                   summary="Human-judged precision of a layer's labels, per source (IoU, crowd)")
    @action(detail=False, methods=["get"], filterset_class=None)
    def precision(self, request):
        raw = request.query_params.get("layer", "")
        if not raw.isdigit() or int(raw) > 2**63 - 1:
            return Response({"detail": "Give the layer: ?layer=ID (an integer)."}, status=400)
        layer = scope(Layer.objects, request.user, path="job__project").filter(pk=int(raw)).first()
        if layer is None:
            return Response({"detail": f"There is no layer {raw}."}, status=404)
        return Response({"layer": layer.pk, "layer_name": layer.name, "sources": verification_table(layer)})
