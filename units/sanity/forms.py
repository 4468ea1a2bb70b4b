"""Forms of the sanity pages: start a report, publish a report's runs as HITs."""
from django import forms

from .services import MAX_SEEDS

LAYER_CHOICES = [("conv1", "conv1"), ("conv2", "conv2"), ("conv3", "conv3")]


class StartForm(forms.Form):
    source = forms.CharField(
        initial="digits", max_length=500,
        help_text="'digits' (scikit-learn's digits, offline) or 'idx:PATH' (MNIST IDX files on the server).",
    )
    seeds = forms.IntegerField(initial=3, min_value=1, max_value=MAX_SEEDS)
    quick = forms.BooleanField(required=False, help_text="Small configuration (about a minute on two cores).")


class PublishForm(forms.Form):
    runs = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=[])
    layers = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=LAYER_CHOICES, initial=["conv3"])
    assignments_per_hit = forms.IntegerField(initial=3, min_value=1, max_value=20)

    def __init__(self, *args, run_ids: list[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["runs"].choices = [(r, r) for r in run_ids]
