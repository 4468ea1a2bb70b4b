"""Serializers of the crowd API: the labelling flow's payloads, HIT batches, HITs, assignments, annotations."""
from __future__ import annotations

from rest_framework import serializers

from annotate_site.roles import is_requester
from units.projects.api.fields import ScopedRelatedField
from units.projects.models import Pool

from units.dissection.models import Layer

from ..models import CATEGORY_CHOICES, Annotation, Assignment, Channel, Hit, HitBatch


class ExemplarOut(serializers.Serializer):
    id = serializers.CharField(help_text="The picture's opaque id; mark it in `non_fitting` when submitting.")
    picture_url = serializers.CharField()
    plain_url = serializers.CharField()


class AssignmentBrief(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    accepted_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()


class HitBrief(serializers.Serializer):
    id = serializers.IntegerField()
    reward = serializers.CharField(help_text="a decimal amount, e.g. 0.05")
    expires_at = serializers.DateTimeField(allow_null=True)
    max_assignments = serializers.IntegerField()
    kind = serializers.CharField(help_text="label or verify")
    proposed_label = serializers.CharField(allow_blank=True, help_text="verify HITs: the label to judge")


class UnitBrief(serializers.Serializer):
    id = serializers.IntegerField()
    layer = serializers.CharField(help_text="the layer's name")
    index = serializers.IntegerField(help_text="the unit's channel index counted from 0 (its number less 1)")


class AssignmentOut(serializers.Serializer):
    """An assignment with everything needed to label it (sentinels are not told apart)."""

    assignment = AssignmentBrief()
    hit = HitBrief()
    unit = UnitBrief()
    exemplars = ExemplarOut(many=True)
    deadline = serializers.DateTimeField()


class ReturnOut(serializers.Serializer):
    assignment = serializers.IntegerField()
    status = serializers.CharField()


class SkipOut(ReturnOut):
    skipped_hit = serializers.IntegerField(help_text="the HIT this annotator will not be offered again")


class SubmitOut(ReturnOut):
    work_seconds = serializers.FloatField(allow_null=True)
    annotation = serializers.IntegerField()


class VerdictOut(SubmitOut):
    verdict = serializers.CharField()


class SubmitIn(serializers.Serializer):
    word = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    category = serializers.ChoiceField(choices=CATEGORY_CHOICES)
    non_fitting = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list,
                                        max_length=200)
    confidence = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=5)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class DetailOut(serializers.Serializer):
    """An answer that is one sentence: why nothing was done, or what went wrong."""

    detail = serializers.CharField()


class HitBatchSerializer(serializers.ModelSerializer):
    layers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    hits = serializers.SerializerMethodField()

    class Meta:
        model = HitBatch
        fields = ["id", "name", "layers", "assignments_per_hit", "reward", "lifetime_seconds",
                  "assignment_duration_seconds", "auto_approval_delay_seconds", "exemplars_shown", "sentinels",
                  "kind", "channel", "redundancy_probability", "redundancy_cap", "created_at", "hits"]

    def get_hits(self, batch: HitBatch) -> int:
        # The list annotates n_hits in its one query; a single batch (just published) counts its own.
        n = getattr(batch, "n_hits", None)
        return batch.hits.count() if n is None else n


class PublishSerializer(serializers.Serializer):
    # Layers of the caller's projects where they may publish; another project's id "does not exist".
    layers = ScopedRelatedField(many=True, queryset=Layer.objects.select_related("job"), project_path="job__project")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    assignments_per_hit = serializers.IntegerField(required=False, default=3)
    reward = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, default="0.05")
    lifetime_seconds = serializers.IntegerField(required=False, default=7 * 24 * 3600)
    assignment_duration_seconds = serializers.IntegerField(required=False, default=15 * 60)
    auto_approval_delay_seconds = serializers.IntegerField(required=False, default=3 * 24 * 3600)
    exemplars_shown = serializers.IntegerField(required=False, default=15)
    sentinels = serializers.IntegerField(required=False, default=0)
    skip_dead = serializers.BooleanField(required=False, default=True)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default=Channel.SITE,
                                      help_text="Where the workers come from; mturk_live and prolific pay real money.")
    pool = ScopedRelatedField(queryset=Pool.objects.all(), required=False, allow_null=True,
                              help_text="A private pool of the layers' project; absent or null: the open crowd.")
    redundancy_probability = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0.0, max_value=1.0,
        help_text="One more answer while a unit's published label is less probable than this; null: the site's.")
    redundancy_cap = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=100,
        help_text="Extra answers stop at this many per unit (at least assignments_per_hit); null: the site's.")


class HitSerializer(serializers.ModelSerializer):
    layer = serializers.CharField(source="unit.layer.name", read_only=True)
    unit_number = serializers.SerializerMethodField(help_text="The unit's number counted from 1, as on the pages.")
    unit_index = serializers.IntegerField(source="unit.index", read_only=True,
                                          help_text="The unit's channel index counted from 0 (unit_number - 1).")

    def get_unit_number(self, obj: Hit) -> int:
        return obj.unit.index + 1

    class Meta:
        model = Hit
        fields = ["id", "batch", "unit", "layer", "unit_number", "unit_index", "max_assignments", "reward",
                  "lifetime_seconds", "assignment_duration_seconds", "auto_approval_delay_seconds", "exemplars_shown",
                  "status", "is_gold", "kind", "proposed_label", "label_source", "created_at", "expires_at"]


class AssignmentSerializer(serializers.ModelSerializer):
    worker = serializers.CharField(source="worker.username", read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "hit", "worker", "status", "accepted_at", "deadline", "submitted_at", "approved_at",
                  "rejected_at", "auto_approve_at", "feedback", "work_seconds"]


class AnnotationSerializer(serializers.ModelSerializer):
    hit = serializers.IntegerField(source="assignment.hit_id", read_only=True)
    unit = serializers.IntegerField(source="assignment.hit.unit_id", read_only=True)
    worker = serializers.CharField(source="assignment.worker.username", read_only=True)
    status = serializers.CharField(source="assignment.status", read_only=True)
    # The pictures' opaque ids, as the HIT's payload gave them: exemplar pks are consecutive and would
    # show in which order the pictures were stored (top images before sentinels). Only the top images
    # among the marks are stored, so annotators do not get the list back: what went missing from
    # their own marks would name the sentinels. Requesters do.
    non_fitting = serializers.SlugRelatedField(many=True, read_only=True, slug_field="public_id",
                                               help_text="Marked top images by opaque id (requesters only).")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not is_requester(request.user):
            data.pop("non_fitting", None)
        return data

    class Meta:
        model = Annotation
        fields = ["id", "assignment", "hit", "unit", "worker", "status", "word", "category", "description",
                  "confidence", "non_fitting", "verdict", "created_at"]


class VerifyBatchOut(HitBatchSerializer):
    report = serializers.CharField(help_text="what was published per label source, and what was left out")

    class Meta(HitBatchSerializer.Meta):
        fields = [*HitBatchSerializer.Meta.fields, "report"]
