"""Serializers of the results API: aggregated labels, aggregation runs, comparisons, exports, synonyms."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from units.crowd.models import HitBatch
from units.dissection.models import DissectionJob, Layer, ProbeDataset
from units.projects.access import VIEW
from units.projects.api.fields import ScopedRelatedField

from ..models import AggregationRun, ExportJob, SynonymEntry, UnitAggregate


class LabelSerializer(serializers.ModelSerializer):
    layer = serializers.IntegerField(source="unit.layer_id", read_only=True)
    layer_name = serializers.CharField(source="unit.layer.name", read_only=True)
    unit_number = serializers.SerializerMethodField(help_text="The unit's number counted from 1, as on the pages "
                                                    "and in tally.csv.")
    unit_index = serializers.IntegerField(source="unit.index", read_only=True,
                                          help_text="The unit's channel index counted from 0 (unit_number - 1).")
    iou_label = serializers.CharField(source="unit.iou_label", read_only=True)
    iou_category = serializers.CharField(source="unit.iou_category", read_only=True)
    iou_score = serializers.FloatField(source="unit.iou_score", read_only=True)

    class Meta:
        model = UnitAggregate
        # crowd_word and category are the published label (`method`), each with its calibrated probability;
        # category_mv is the vote beside it; category_ds and category_ds_probability are deprecated copies
        # of category and category_probability, removed in the next release.
        fields = ["id", "unit", "layer", "layer_name", "unit_number", "unit_index", "crowd_word", "word_probability",
                  "concept", "category", "category_probability", "method", "category_mv", "category_ds",
                  "category_ds_probability", "agreement", "category_agreement",
                  "precision", "interpretable", "n_annotations", "iou_label", "iou_category", "iou_score", "word_match",
                  "category_match", "run", "updated_at"]

    def get_unit_number(self, obj: UnitAggregate) -> int:
        return obj.unit.index + 1


class RedundancySerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    probability = serializers.FloatField(help_text="a HIT whose published label is less probable than this (the "
                                         "lower of the word's and the category's) gets one more assignment")
    cap = serializers.IntegerField(help_text="at most this many assignments in all")


class RunParametersSerializer(serializers.Serializer):
    """A layer's run: its methods and settings; a batch's agreement run: the layers it covered."""

    category = serializers.ListField(child=serializers.CharField(), required=False)
    word = serializers.CharField(required=False)
    ds_iterations = serializers.IntegerField(required=False)
    ds_tol = serializers.FloatField(required=False)
    interpretable_precision = serializers.FloatField(required=False)
    counted_statuses = serializers.ListField(child=serializers.CharField(), required=False)
    redundancy = RedundancySerializer(required=False)
    layers = serializers.ListField(child=serializers.IntegerField(), required=False)


class PrecisionRowSerializer(serializers.Serializer):
    """Human-judged precision of one label source of the layer (verify HITs)."""

    source = serializers.CharField()
    judged = serializers.IntegerField()
    accepted_mv = serializers.IntegerField()
    precision_mv = serializers.FloatField(allow_null=True)
    accepted_ds = serializers.IntegerField()
    precision_ds = serializers.FloatField(allow_null=True)
    unsure_answers = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)


class RunSummarySerializer(serializers.Serializer):
    """A layer's succeeded run (empty for a batch's agreement run and until a run succeeds)."""

    alpha_category = serializers.FloatField(allow_null=True, required=False)
    alpha_word = serializers.FloatField(allow_null=True, required=False)
    reopened_hits = serializers.ListField(child=serializers.IntegerField(), required=False)
    units_changed = serializers.IntegerField(required=False)
    verification = PrecisionRowSerializer(many=True, required=False)


@extend_schema_field(RunParametersSerializer)
class RunParametersField(serializers.JSONField):
    """The run's `parameters` as stored; the schema says what they hold."""


@extend_schema_field(RunSummarySerializer)
class RunSummaryField(serializers.JSONField):
    """The run's `summary` as stored (empty until a layer's run succeeds); the schema says what it holds."""


class AggregationRunSerializer(serializers.ModelSerializer):
    parameters = RunParametersField(read_only=True)
    summary = RunSummaryField(read_only=True)

    class Meta:
        model = AggregationRun
        fields = ["id", "layer", "batch", "method", "parameters", "status", "n_units", "n_annotations", "alpha",
                  "summary", "error_message", "started_at", "finished_at"]


class AggregateRequestSerializer(serializers.Serializer):
    # Ids of the caller's projects only (where they may work); another project's id "does not exist".
    layer = ScopedRelatedField(queryset=Layer.objects.all(), project_path="job__project", required=False)
    job = ScopedRelatedField(queryset=DissectionJob.objects.all(), required=False)
    batch = ScopedRelatedField(queryset=HitBatch.objects.all(), required=False)

    def validate(self, attrs):
        if len([k for k in ("layer", "job", "batch") if attrs.get(k)]) != 1:
            raise serializers.ValidationError("Give exactly one of layer, job or batch.")
        return attrs


class DetectorsSerializer(serializers.Serializer):
    units = serializers.IntegerField(help_text="units counted as detectors")
    concepts = serializers.IntegerField(help_text="unique concepts among them")
    by_category = serializers.DictField(child=serializers.IntegerField(), help_text="unique concepts per category")


class DetectorCountsSerializer(serializers.Serializer):
    """NetDissect's detector counts by IoU next to the crowd's own."""

    n_units = serializers.IntegerField()
    iou = DetectorsSerializer()
    crowd = DetectorsSerializer()


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
    detectors = DetectorCountsSerializer()


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    filename = serializers.CharField(read_only=True)

    # Exports are results: every member may make one of what they see.
    job = ScopedRelatedField(VIEW, queryset=DissectionJob.objects.all(), required=False, allow_null=True)
    layer = ScopedRelatedField(VIEW, queryset=Layer.objects.all(), project_path="job__project", required=False,
                               allow_null=True)
    batch = ScopedRelatedField(VIEW, queryset=HitBatch.objects.all(), required=False, allow_null=True)

    class Meta:
        model = ExportJob
        fields = ["id", "kind", "job", "layer", "batch", "status", "progress", "filename", "download_url",
                  "error_message", "created_at", "finished_at"]
        read_only_fields = ["status", "progress", "error_message", "created_at", "finished_at"]

    def get_download_url(self, obj: ExportJob) -> str | None:
        if obj.status != ExportJob.Status.SUCCEEDED:
            return None
        request = self.context.get("request")
        url = f"/api/v1/exports/{obj.pk}/download/"  # the current API version, not the deprecated alias
        return request.build_absolute_uri(url) if request else url


class SynonymSerializer(serializers.ModelSerializer):
    dataset = ScopedRelatedField(queryset=ProbeDataset.objects.all())

    class Meta:
        model = SynonymEntry
        fields = ["id", "dataset", "word", "target", "created_at"]
        read_only_fields = ["created_at"]
        validators: list = []  # update_or_create in the service replaces an existing word
