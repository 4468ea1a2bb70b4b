"""HITs and assignments, following Mechanical Turk's rules."""
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models

from units.dissection.models import Exemplar, Layer, Unit
from units.projects.models import Pool, Project

CATEGORY_CHOICES = [
    ("scene", "scene"),
    ("object", "object"),
    ("part", "part"),
    ("texture", "texture / material"),
    ("color", "color"),
    ("none", "no clear concept"),
]


class HitKind(models.TextChoices):
    """What a HIT asks: name the unit's concept (label) or judge one proposed label (verify, CVPR 2017)."""

    LABEL = "label", "label"
    VERIFY = "verify", "verify"


class LabelSource(models.TextChoices):
    """Where a verify HIT's proposed label comes from; a sentinel is a label chosen not to fit."""

    IOU = "iou", "IoU label"
    CROWD = "crowd", "crowd label"
    REQUESTER = "requester", "requester's label"
    SENTINEL = "sentinel", "sentinel (does not fit)"


VERDICT_CHOICES = [("yes", "yes"), ("no", "no"), ("unsure", "unsure")]


class Channel(models.TextChoices):
    """Where a batch's workers come from: this site's annotators, Mechanical Turk (sandbox: test money;
    live: real money) or Prolific. Pages show the channel loudly wherever a batch is listed."""

    SITE = "site", "this site's annotators"
    MTURK_SANDBOX = "mturk_sandbox", "Mechanical Turk SANDBOX (no real money)"
    MTURK_LIVE = "mturk_live", "Mechanical Turk LIVE (real money)"
    PROLIFIC = "prolific", "Prolific (real money)"


class HitBatch(models.Model):
    """One publishing action: the units of chosen layers (of one project) turned into HITs."""

    project = models.ForeignKey(Project, related_name="hit_batches", on_delete=models.CASCADE)
    # None: the open crowd (any qualified annotator); else only the pool's members are offered its HITs.
    # RESTRICT: a pool in use cannot be deleted (which would open its batches to everyone), except
    # with its project, whose batches go too.
    pool = models.ForeignKey(Pool, null=True, blank=True, related_name="hit_batches", on_delete=models.RESTRICT)
    name = models.CharField(max_length=200)
    layers = models.ManyToManyField(Layer, related_name="hit_batches")
    assignments_per_hit = models.PositiveIntegerField(default=3)
    reward = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.05"))
    lifetime_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    assignment_duration_seconds = models.PositiveIntegerField(default=15 * 60)
    auto_approval_delay_seconds = models.PositiveIntegerField(default=3 * 24 * 3600)
    exemplars_shown = models.PositiveIntegerField(default=15)
    sentinels = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=6, choices=HitKind.choices, default=HitKind.LABEL)
    channel = models.CharField(max_length=14, choices=Channel.choices, default=Channel.SITE)
    # The marketplace's id of what stands for the batch there (MTurk: the HIT type), once published there.
    external_id = models.CharField(max_length=64, blank=True)
    # Adaptive redundancy (results.services): a HIT whose published label is less probable than this after
    # all its assignments gets one more, up to `redundancy_cap` in all. Empty: the site's defaults
    # (RESULTS_REDUNDANCY_PROBABILITY, RESULTS_REDUNDANCY_CAP).
    redundancy_probability = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Ask for one more answer while the label's probability is below this (empty: site default).")
    redundancy_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many assignments per HIT in all (empty: site default).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    # crowd.publishing.hit_publish attaches the counts of that publishing (a PublishReport) to the batch
    # it returns; typed loosely here, as the models sit below the publishing code.
    report: Any

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_external(self) -> bool:
        return self.channel != Channel.SITE

    @property
    def is_live_money(self) -> bool:
        return self.channel in (Channel.MTURK_LIVE, Channel.PROLIFIC)


class Hit(models.Model):
    class Status(models.TextChoices):
        ASSIGNABLE = "assignable", "Assignable"
        UNASSIGNABLE = "unassignable", "Unassignable"
        REVIEWABLE = "reviewable", "Reviewable"
        REVIEWING = "reviewing", "Reviewing"
        DISPOSED = "disposed", "Disposed"

    batch = models.ForeignKey(HitBatch, related_name="hits", on_delete=models.CASCADE)
    unit = models.ForeignKey(Unit, related_name="hits", on_delete=models.CASCADE)
    max_assignments = models.PositiveIntegerField(default=3)
    reward = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.05"))
    lifetime_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    assignment_duration_seconds = models.PositiveIntegerField(default=15 * 60)
    auto_approval_delay_seconds = models.PositiveIntegerField(default=3 * 24 * 3600)
    exemplars_shown = models.PositiveIntegerField(default=15)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.ASSIGNABLE, db_index=True)
    is_gold = models.BooleanField(default=False)
    kind = models.CharField(max_length=6, choices=HitKind.choices, default=HitKind.LABEL, db_index=True)
    # Verify HITs only: the label shown and where it came from.
    proposed_label = models.CharField(max_length=200, blank=True)
    label_source = models.CharField(max_length=10, choices=LabelSource.choices, blank=True)
    # The marketplace's HIT id (MTurk's HITId) once the HIT is published there.
    external_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        # One labelling HIT per unit, and one verify HIT per unit and label source: publishing the same
        # layer twice must not duplicate work.
        constraints = [
            models.UniqueConstraint(fields=["unit"], condition=models.Q(kind="label"), name="hit_unique_unit"),
            models.UniqueConstraint(fields=["unit", "label_source"], condition=models.Q(kind="verify"),
                                    name="hit_unique_verify_source"),
        ]
        # The claim's shortlist reads open HITs in id order (crowd.services._likely_shortlist): with
        # (status, id) that is an index range scan that stops after the window, however many disposed
        # or full HITs came before (with the status index alone PostgreSQL sorted or filtered them all).
        indexes = [models.Index(fields=["status", "id"], name="hit_status_id"),
                   # gold HITs are few: the claim's gold group is read from this (crowd.services._open_ids)
                   models.Index(fields=["id"], condition=models.Q(is_gold=True), name="hit_gold")]

    def __str__(self) -> str:
        return f"HIT {self.pk} ({self.unit})"

    @property
    def assignment_duration(self) -> timedelta:
        return timedelta(seconds=self.assignment_duration_seconds)


class Assignment(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        # An outside crowd's answer stored here that the marketplace has not yet confirmed (units/crowd/
        # external_work.py): held out of aggregation, quality figures and review until it does.
        PENDING = "pending", "Awaiting the marketplace"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ABANDONED = "abandoned", "Abandoned"
        RETURNED = "returned", "Returned"

    # Statuses that hold one of the HIT's MaxAssignments slots.
    SLOT_STATUSES = (Status.ACCEPTED, Status.PENDING, Status.SUBMITTED, Status.APPROVED)
    # `external_status` of an outside answer its marketplace disowned (units/crowd/confirmation.py).
    VOID = "Void"

    hit = models.ForeignKey(Hit, related_name="assignments", on_delete=models.CASCADE)
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="assignments", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACCEPTED, db_index=True)
    accepted_at = models.DateTimeField()
    deadline = models.DateTimeField(db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    auto_approve_at = models.DateTimeField(null=True, blank=True, db_index=True)
    feedback = models.TextField(blank=True)
    work_seconds = models.FloatField(null=True, blank=True)
    # When the annotator took the one extension of this window (a retake opens a new window: cleared).
    extended_at = models.DateTimeField(null=True, blank=True)
    # The marketplace's id of this piece of work (MTurk's AssignmentId, Prolific's submission id), and
    # what the marketplace last said about it (MTurk: Submitted, Approved, Rejected).
    external_id = models.CharField(max_length=64, blank=True, db_index=True)
    external_status = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["id"]
        # A worker does a HIT at most once, whatever happened to an earlier attempt.
        constraints = [models.UniqueConstraint(fields=["hit", "worker"], name="assignment_unique_worker")]

    def __str__(self) -> str:
        return f"assignment {self.pk} of {self.hit} by {self.worker}"


class Annotation(models.Model):
    """What an annotator answered for one assignment."""

    assignment = models.OneToOneField(Assignment, related_name="annotation", on_delete=models.CASCADE)
    word = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=10, choices=CATEGORY_CHOICES)
    description = models.TextField(blank=True, max_length=1000)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    non_fitting = models.ManyToManyField(Exemplar, blank=True, related_name="marked_not_fitting")
    # Gold HITs: whether the answer matched the unit's known concept (None for other HITs).
    gold_correct = models.BooleanField(null=True, blank=True)
    # Low-activation sentinels (ICLR 2015): shown in the form, expected to be marked "not fitting".
    # `non_fitting` holds only top exemplars, so precision can be read from it directly.
    sentinels_shown = models.PositiveSmallIntegerField(default=0)
    sentinels_missed = models.PositiveSmallIntegerField(default=0)
    # Verify HITs: the answer to "does this label describe most highlighted regions?" (blank otherwise).
    verdict = models.CharField(max_length=6, choices=VERDICT_CHOICES, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        if self.verdict:
            return f"verdict {self.verdict}"
        return f"{self.word or '-'} ({self.category})"


class Skip(models.Model):
    """A HIT an annotator asked never to see again."""

    hit = models.ForeignKey(Hit, related_name="skips", on_delete=models.CASCADE)
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="hit_skips", on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hit", "worker"], name="skip_unique_worker")]

    def __str__(self) -> str:
        return f"HIT {self.hit_id} skipped by user {self.worker_id}"


class CrowdSettings(models.Model):
    """Site-wide crowd settings a requester can change (one row): how annotators sign up, and the
    share of gold HITs in each annotator's stream (the queue mixes every project's HITs). The
    qualification test's settings are each project's own (`QualificationSettings`)."""

    class SignupMode(models.TextChoices):
        OPEN = "open", "open: anyone can sign up"
        INVITE = "invite", "invite code required"
        CLOSED = "closed", "closed"

    signup_mode = models.CharField(max_length=10, choices=SignupMode.choices, default=SignupMode.OPEN)
    # Share of each annotator's assignments drawn from gold HITs when any are open.
    gold_rate = models.FloatField(default=0.1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "crowd settings"

    def __str__(self) -> str:
        return "crowd settings"

    @classmethod
    def load(cls) -> "CrowdSettings":
        try:
            obj, _ = cls.objects.get_or_create(pk=1)
        except IntegrityError:  # two first readers raced to create the row; the other one won
            obj = cls.objects.get(pk=1)
        return obj


class InviteCode(models.Model):
    code = models.CharField(max_length=40, unique=True)
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.code

    @property
    def usable(self) -> bool:
        return self.active and self.uses < self.max_uses


class QualificationSettings(models.Model):
    """A project's qualification test: how many of its gold units, the share to match, the wait after a failure."""

    project = models.OneToOneField(Project, related_name="qualification_settings", on_delete=models.CASCADE)
    size = models.PositiveSmallIntegerField(default=5)
    pass_fraction = models.FloatField(default=0.6)
    cooldown_minutes = models.PositiveIntegerField(default=60)

    class Meta:
        verbose_name_plural = "qualification settings"

    def __str__(self) -> str:
        return f"qualification settings of {self.project}"

    @classmethod
    def of(cls, project: Project | int) -> "QualificationSettings":
        """The project's row, made with the defaults on first use."""
        project_id = project if isinstance(project, int) else project.pk
        try:
            obj, _ = cls.objects.get_or_create(project_id=project_id)
        except IntegrityError:  # two first readers raced to create the row; the other one won
            obj = cls.objects.get(project_id=project_id)
        return obj


class Qualification(models.Model):
    """An annotator qualified for one project: its HITs (open or of its pools they are in) may be offered
    to them. Made by passing the project's test or by a requester's decision; removed to unqualify."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="qualifications", on_delete=models.CASCADE)
    project = models.ForeignKey(Project, related_name="qualifications", on_delete=models.CASCADE)
    qualified_at = models.DateTimeField()
    qualified_manually_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["project", "user"]
        # (user, project): the claim reads a worker's projects by user (crowd.services._qualified_projects).
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="qualification_unique_project")]

    def __str__(self) -> str:
        return f"user {self.user_id} qualified for project {self.project_id}"


class AnnotatorProfile(models.Model):
    """Crowd state of one user across the site: block, review flag (qualification is per project)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="annotator_profile", on_delete=models.CASCADE)
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=500, blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True)
    flag_reason = models.CharField(max_length=500, blank=True)
    invite_code = models.ForeignKey(InviteCode, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None


class QualificationAttempt(models.Model):
    """One sitting of a project's qualification test; the gold units (of that project) are fixed when it starts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="qualification_attempts", on_delete=models.CASCADE)
    project = models.ForeignKey(Project, related_name="qualification_attempts", on_delete=models.CASCADE)
    unit_ids = models.JSONField(default=list)
    answers = models.JSONField(default=dict, blank=True)
    correct = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"qualification attempt {self.pk} of user {self.user_id}"

    @property
    def total(self) -> int:
        return len(self.unit_ids)



class ChannelSettings(models.Model):
    """A project's outside crowds: credentials (secrets encrypted, units/crowd/channels.py), the budget cap
    and Prolific's study settings. Owners only; never shown again once saved, never in logs, exports or the API."""

    project = models.OneToOneField(Project, related_name="channel_settings", on_delete=models.CASCADE)
    mturk_access_key_id = models.CharField(max_length=128, blank=True)
    mturk_secret_encrypted = models.TextField(blank=True)
    prolific_token_encrypted = models.TextField(blank=True)
    # Publishing refuses a batch whose cost (rewards and fees) would take the project's paid spending past this.
    budget_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    prolific_completion_code = models.CharField(max_length=64, blank=True)
    prolific_hits_per_participant = models.PositiveSmallIntegerField(default=10)
    # The quality rule (units/crowd/quality.py), for every crowd of the project: a worker whose share of passed
    # checks (gold answers, sentinels) is below `quality_min_pass_rate` once they gave `quality_min_answers`
    # answers is blocked, and their work still waiting for review is rejected. None: no rule.
    quality_min_pass_rate = models.FloatField(null=True, blank=True)
    quality_min_answers = models.PositiveIntegerField(default=10)
    # MTurk's QualificationTypeId granted to the project's workers who pass its test, per MTurk channel
    # ({"mturk_sandbox": "3AB..."}), made the first time someone passes (units/crowd/mturk.py).
    mturk_qualification_types = models.JSONField(default=dict, blank=True)
    # The Prolific workspace whose balance the publish page shows (empty: no balance shown).
    prolific_workspace_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "channel settings"

    def __str__(self) -> str:
        return f"crowd channels of project {self.project_id}"


class BonusPayment(models.Model):
    """A bonus on one outside-crowd assignment (one at most per assignment). Prolific's pay call is not
    idempotent, so `paid_at` is set before it is made: a failure leaves the bonus unpaid, never paid twice."""

    assignment = models.OneToOneField(Assignment, related_name="bonus", on_delete=models.CASCADE)
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    reason = models.CharField(max_length=500)
    external_id = models.CharField(max_length=64, blank=True)  # Prolific's bulk bonus payment id
    paid_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                                  on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"bonus ${self.amount} on assignment {self.assignment_id}"
