"""API representations of networks, datasets, jobs, layers, units and exemplars."""
from __future__ import annotations

from rest_framework import serializers

from units.dissection.models import (
    Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore,
)
from units.projects.api.fields import ProjectField, ScopedRelatedField


class NetworkSerializer(serializers.ModelSerializer):
    project = ProjectField()
    checkpoint = serializers.FileField(required=False, allow_null=True, use_url=False)

    class Meta:
        model = Network
        fields = ["id", "project", "name", "kind", "architecture", "checkpoint", "num_classes", "class_names", "mean",
                  "std", "input_size", "description", "created_at"]
        read_only_fields = ["id", "kind", "created_at"]
        extra_kwargs = {"name": {"validators": []}}  # the service reports a taken name itself


class ConceptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Concept
        fields = ["number", "name", "category"]


class DatasetSerializer(serializers.ModelSerializer):
    project = ProjectField()
    archive = serializers.FileField(write_only=True, required=False, help_text="A zip of the dataset folder.")
    path = serializers.CharField(required=False, allow_blank=True, max_length=500)
    num_concepts = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = ProbeDataset
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "path",
            "archive",
            "image_size",
            "num_images",
            "categories",
            "num_concepts",
            "description",
            "created_at",
        ]
        read_only_fields = ["id", "num_images", "categories", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


class JobSerializer(serializers.ModelSerializer):
    start = serializers.BooleanField(write_only=True, required=False, default=False,
                                     help_text="Queue the job right away.")
    layers = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False)
    # Ids of the caller's projects only (where they may dissect); another project's id "does not exist".
    network = ScopedRelatedField(queryset=Network.objects.all())
    dataset = ScopedRelatedField(queryset=ProbeDataset.objects.all())

    class Meta:
        model = DissectionJob
        fields = ["id", "kind", "network", "dataset", "layers", "top_k", "quantile", "iou_rule", "batch_size",
                  "shards", "samples", "sample_seed", "status", "stage", "progress", "error_message", "timings",
                  "attempts", "created_at", "started_at", "finished_at", "start"]
        read_only_fields = ["id", "kind", "status", "stage", "progress", "error_message", "timings", "attempts",
                            "created_at", "started_at", "finished_at"]


class JobStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    stage = serializers.CharField()
    progress = serializers.FloatField(help_text="0..1")
    error = serializers.CharField()
    finished = serializers.BooleanField()


class LayerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Layer
        fields = ["id", "job", "name", "num_units", "summary"]


class ConceptScoreSerializer(serializers.ModelSerializer):
    concept = ConceptSerializer()

    class Meta:
        model = UnitConceptScore
        fields = ["rank", "concept", "iou"]


class UnitSerializer(serializers.ModelSerializer):
    layer_name = serializers.CharField(source="layer.name", read_only=True)
    job = serializers.IntegerField(source="layer.job_id", read_only=True)
    is_dead = serializers.BooleanField(read_only=True)
    top_concepts = ConceptScoreSerializer(source="concept_scores", many=True, read_only=True)
    unit_number = serializers.SerializerMethodField(help_text="The unit's number counted from 1, as on the pages "
                                                    "and in tally.csv.")

    def get_unit_number(self, obj: Unit) -> int:
        return obj.index + 1

    class Meta:
        model = Unit
        extra_kwargs = {"index": {"help_text": "The unit's channel index counted from 0 (unit_number - 1)."}}
        fields = ["id", "job", "layer", "layer_name", "unit_number", "index", "threshold", "max_activation", "is_dead",
                  "iou_label", "iou_category", "iou_score", "strip", "is_gold", "gold_word", "gold_category",
                  "top_concepts"]


class ExemplarSerializer(serializers.ModelSerializer):
    picture_url = serializers.CharField(read_only=True)
    plain_url = serializers.CharField(read_only=True)

    class Meta:
        model = Exemplar
        fields = ["id", "unit", "kind", "rank", "image_index", "image_name", "score", "picture_url", "plain_url"]
