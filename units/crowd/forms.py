"""Forms: they parse and show errors; the rules themselves live in validation.py and the services."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from units.dissection.models import Layer
from units.dissection.selectors import layers_for_publishing
from units.projects.access import WORK
from units.projects.models import Pool

from .publishing import redundancy_defaults
from .models import CATEGORY_CHOICES, Channel, ChannelSettings, CrowdSettings, QualificationSettings
from .validation import DESCRIPTION_MAX, WORD_MAX

CONFIDENCE_CHOICES = [(i, str(i)) for i in range(1, 6)]


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)
    invite_code = forms.CharField(max_length=40, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class AnswerForm(forms.Form):
    """One labelling answer. `exemplar_ids` are the public ids of the pictures shown, so foreign ids are
    refused here too."""

    word = forms.CharField(max_length=WORD_MAX, required=False,
                           # data-counter: the page says how many characters are left (crowd/wordcount.js).
                           widget=forms.TextInput(attrs={"autocomplete": "off", "id": "id_word",
                                                         "data-counter": "word-count"}))
    category = forms.ChoiceField(choices=CATEGORY_CHOICES, widget=forms.RadioSelect,
                                 error_messages={"required": "Choose a category (keys 1-6)."})
    non_fitting = forms.TypedMultipleChoiceField(coerce=str, required=False, choices=())
    description = forms.CharField(max_length=DESCRIPTION_MAX, required=False,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    confidence = forms.TypedChoiceField(choices=CONFIDENCE_CHOICES, coerce=int, initial=3,
                                        widget=forms.RadioSelect)

    def __init__(self, *args: Any, exemplar_ids: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["non_fitting"].choices = [(pk, str(pk)) for pk in exemplar_ids]
        self.fields["non_fitting"].error_messages["invalid_choice"] = "A marked image is not part of this HIT."


class ReviewForm(forms.Form):
    assignment_ids = forms.TypedMultipleChoiceField(coerce=int, choices=(),
                                                    error_messages={"required": "Select at least one assignment."})
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    feedback = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, assignment_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignment_ids"].choices = [(pk, str(pk)) for pk in assignment_ids]


class CrowdSettingsForm(forms.ModelForm):
    class Meta:
        model = CrowdSettings
        fields = ["signup_mode", "gold_rate"]

    def clean_gold_rate(self) -> float:
        value = self.cleaned_data["gold_rate"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("A rate between 0 and 1.")
        return value


class QualificationSettingsForm(forms.ModelForm):
    """A project's qualification test: its size, the share to match, the longest wait after failures."""

    class Meta:
        model = QualificationSettings
        fields = ["size", "pass_fraction", "cooldown_minutes"]
        labels = {"size": "Gold units per test", "pass_fraction": "Share to match to pass",
                  "cooldown_minutes": "Longest wait after failed attempts (minutes)"}

    def clean_pass_fraction(self) -> float:
        value = self.cleaned_data["pass_fraction"]
        if not 0 < value <= 1:
            raise forms.ValidationError("A fraction between 0 (exclusive) and 1.")
        return value

    def clean_size(self) -> int:
        value = self.cleaned_data["size"]
        if value < 1:
            raise forms.ValidationError("The test needs at least one unit.")
        return value


class InviteCodeForm(forms.Form):
    max_uses = forms.IntegerField(min_value=1, max_value=10000, initial=10)
    note = forms.CharField(max_length=200, required=False)


class GoldForm(forms.Form):
    unit_id = forms.IntegerField(min_value=1, label="Unit id")
    gold_word = forms.CharField(max_length=120, required=False, label="Word (alternatives separated by |)")
    gold_category = forms.ChoiceField(choices=CATEGORY_CHOICES, label="Category")


class AnnotatorActionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in
                                        ("qualify", "unqualify", "block", "unblock", "unflag", "bonus")])
    reason = forms.CharField(max_length=500, required=False)
    # Qualify and unqualify act on one project: one where the requester works (the view checks it).
    project = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    amount = forms.DecimalField(required=False, min_value=Decimal("0.01"), max_value=Decimal("100"),
                                decimal_places=2, label="Bonus (USD)")  # MTurk workers: bonus


class LayerChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value: Any) -> QuerySet:
        # Django looks every posted id up with `pk__in`; an id past 64 bits makes SQLite raise (a 500), so
        # such ids are refused here with the field's usual "not one of the choices" message.
        for pk in value:
            if str(pk).isdigit() and int(str(pk)) > 2**63 - 1:
                raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                            params={"value": pk})
        return super()._check_values(value)

    def label_from_instance(self, layer: Layer) -> str:
        return (f"job {layer.job_id} · {layer.job.network} · {layer.name} "
                f"({layer.num_units} units, {layer.published} published)")


class PublishForm(forms.Form):
    title = forms.CharField(
        max_length=120, required=False, label="Title shown to annotators",
        help_text="What annotators see in their list of batches, e.g. \"Name what each unit of a scene "
                  "classifier detects\". Empty: a plain description of the layers.")
    layers = LayerChoiceField(queryset=Layer.objects.none(), widget=forms.CheckboxSelectMultiple)
    pool = forms.ModelChoiceField(queryset=Pool.objects.none(), required=False, label="Crowd",
                                  empty_label="the open crowd (every qualified annotator)",
                                  help_text="Or a private pool of this project: only its members get the HITs.")
    channel = forms.ChoiceField(
        choices=Channel.choices, initial=Channel.SITE, required=False, label="Crowd channel",
        help_text="Where the workers come from. The Mechanical Turk sandbox pays test money; LIVE and Prolific "
                  "pay real money (the project's owner sets their credentials and budget cap).")  # absent: site
    confirm_cost = forms.BooleanField(
        required=False, label="I accept this batch's cost",
        help_text="Real-money channels: the page shows the cost first, then publishes once this is ticked.")
    assignments_per_hit = forms.IntegerField(initial=3, min_value=1, max_value=100)
    reward = forms.DecimalField(initial=Decimal("0.05"), min_value=0, max_digits=8, decimal_places=2)
    lifetime_hours = forms.FloatField(initial=168, min_value=0.02, help_text="How long HITs can be taken.")
    assignment_minutes = forms.FloatField(initial=15, min_value=0.5,
                                          help_text="Time an annotator has after taking a HIT.")
    auto_approval_hours = forms.FloatField(initial=72, min_value=0, help_text="Submitted work is approved after this.")
    exemplars_shown = forms.IntegerField(initial=15, min_value=1, max_value=100)
    # The instructions promise sentinels: by default as many as the dissection stored per unit (the setting).
    sentinels = forms.IntegerField(initial=lambda: settings.UNITCROWD_SENTINELS_PER_UNIT, min_value=0, max_value=10,
                                   help_text="Low-activation images mixed in as a quality check (ICLR 2015).")
    skip_dead = forms.BooleanField(required=False, initial=True, label="Skip dead units (never active)")
    redundancy_probability = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, label="More answers below this probability",
        help_text="Label HITs: a unit whose published label is less probable than this after its assignments "
                  "gets one more answer. Empty: the site's default ({probability}).")
    redundancy_cap = forms.IntegerField(
        required=False, min_value=1, max_value=100, label="Most answers per unit",
        help_text="Label HITs: extra answers stop at this many in all; at least the assignments per HIT. "
                  "Empty: the site's default ({cap}).")
    hit_type = forms.ChoiceField(
        choices=[("label", "label: annotators name each unit's concept"),
                 ("verify", "verify: annotators judge a proposed label yes / no (Network Dissection's human check)")],
        initial="label", required=False, widget=forms.RadioSelect, label="HIT type")  # absent: label
    label_sources = forms.MultipleChoiceField(
        choices=[("iou", "the IoU label"), ("crowd", "the crowd's aggregated label")], initial=["iou", "crowd"],
        required=False, widget=forms.CheckboxSelectMultiple, label="Labels to verify (verify HITs)",
        help_text="For verify HITs, sentinels are extra HITs per layer whose label clearly does not fit.")

    def __init__(self, *args: Any, user: Any, project: Any, **kwargs: Any) -> None:
        # The layers of the current project where the user may publish; another project's id is "not a choice".
        super().__init__(*args, **kwargs)
        self.fields["layers"].queryset = layers_for_publishing(user, WORK, project)
        self.fields["pool"].queryset = Pool.objects.filter(project=project)
        defaults = redundancy_defaults()
        for name in ("redundancy_probability", "redundancy_cap"):
            field = self.fields[name]
            field.help_text = str(field.help_text).format(**defaults)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        redundancy = [data.get(n) for n in ("redundancy_probability", "redundancy_cap")]
        if data.get("hit_type") == "verify" and any(v is not None for v in redundancy):
            raise forms.ValidationError("More answers where the label is uncertain applies to label HITs only; "
                                        "leave both redundancy fields empty for verify HITs.")
        cap, assignments = data.get("redundancy_cap"), data.get("assignments_per_hit")
        if cap is not None and assignments is not None and cap < assignments:
            self.add_error("redundancy_cap", f"At least the assignments per HIT ({assignments}).")
        return data


class ChannelSettingsForm(forms.Form):
    """A project's outside crowds. Secrets are write-only: left empty, the stored one stays."""

    mturk_access_key_id = forms.CharField(max_length=128, required=False, label="MTurk (AWS) access key id")
    mturk_secret = forms.CharField(max_length=256, required=False, label="MTurk (AWS) secret access key",
                                   widget=forms.PasswordInput(render_value=False),
                                   help_text="Write-only: never shown again; empty keeps the stored one.")
    prolific_token = forms.CharField(max_length=512, required=False, label="Prolific API token",
                                     widget=forms.PasswordInput(render_value=False),
                                     help_text="Write-only: never shown again; empty keeps the stored one.")
    budget_cap = forms.DecimalField(required=False, min_value=0, max_digits=10, decimal_places=2,
                                    label="Budget cap (USD)",
                                    help_text="Publishing on MTurk LIVE or Prolific refuses a batch that would "
                                              "take the project's spending past this. Empty: no cap.")
    prolific_completion_code = forms.CharField(max_length=64, required=False,
                                               label="Prolific completion code")
    prolific_hits_per_participant = forms.IntegerField(min_value=1, max_value=500, initial=10, required=False,
                                                       label="HITs per Prolific participant")
    prolific_workspace_id = forms.RegexField(
        regex=r"^[A-Za-z0-9]*$", max_length=64, required=False, label="Prolific workspace id",
        help_text="The workspace whose balance the publish page shows (empty: none shown).",
        error_messages={"invalid": "A Prolific workspace id has only letters and digits."})
    quality_min_pass_rate = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Quality rule: least share of checks passed",
        help_text="Gold answers and sentinels. A worker below it is blocked (on MTurk too) and their work waiting "
                  "for review is rejected. Empty: no rule.")
    quality_min_answers = forms.IntegerField(min_value=1, max_value=1000, initial=10, required=False,
                                             label="Quality rule: judged after this many answers")
    clear_credentials = forms.BooleanField(required=False, label="Forget the stored credentials")

    def clean_quality_min_answers(self) -> int:
        return self.cleaned_data["quality_min_answers"] or 10

    def clean_prolific_hits_per_participant(self) -> int:
        return self.cleaned_data["prolific_hits_per_participant"] or 10

    @classmethod
    def for_row(cls, row: ChannelSettings | None, data: Any = None) -> ChannelSettingsForm:
        initial = ({"mturk_access_key_id": row.mturk_access_key_id, "budget_cap": row.budget_cap,
                    "prolific_completion_code": row.prolific_completion_code,
                    "prolific_hits_per_participant": row.prolific_hits_per_participant,
                    "prolific_workspace_id": row.prolific_workspace_id,
                    "quality_min_pass_rate": row.quality_min_pass_rate,
                    "quality_min_answers": row.quality_min_answers} if row else {})
        return cls(data, initial=initial)
