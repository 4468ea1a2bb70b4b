"""Forms of the sanity pages: start a report, publish a report's runs as HITs."""
from django import forms

from tasks.engine.sanity.pipeline import FULL_BOTH

from .services import MAX_SEEDS, sanity_minutes

LAYER_CHOICES = [("conv1", "conv1"), ("conv2", "conv2"), ("conv3", "conv3")]


class StartForm(forms.Form):
    source = forms.CharField(
        initial="digits", max_length=500,
        help_text="'digits' (scikit-learn's digits, offline) or 'idx:PATH' (MNIST IDX files on the server).",
    )
    seeds = forms.IntegerField(initial=3, min_value=1, max_value=MAX_SEEDS)
    quick = forms.BooleanField(required=False)
    network = forms.ChoiceField(
        choices=[("mixturenet", "MixtureNet (ours: BatchNorm, strided conv1)"),
                 ("seed", "the seed's plain network (conv 10-20-10, no BatchNorm)"), ("both", "both")],
        initial="mixturenet", required=False,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The engine's estimate for two idle cores, so the page promises what the run takes.
        quick, full = sanity_minutes(seeds=1, quick=True), sanity_minutes(seeds=3)
        seed_full = sanity_minutes(seeds=3, network="seed")
        both_full, both_seeds = sanity_minutes(seeds=None, network="both"), FULL_BOTH["seeds"]
        self.fields["quick"].help_text = (f"Small configuration: about {quick:.0f} minute(s) on two cores, "
                                          f"against about {full:.0f} for the full run with 3 seeds.")
        self.fields["network"].help_text = (f"The seed's network costs about 2.5x more per training image (full run, 3 "
                                            f"seeds: about {seed_full:.0f} minutes). Both: the full run with "
                                            f"{both_seeds} seeds, {FULL_BOTH['seed_epochs']} epochs of the seed's "
                                            f"network, {FULL_BOTH['epochs']} of ours, "
                                            f"takes about {both_full:.0f} minutes (the engine README says what it "
                                            "gives up); more seeds take longer.")


class PublishForm(forms.Form):
    runs = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=[])
    layers = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=LAYER_CHOICES, initial=["conv3"])
    assignments_per_hit = forms.IntegerField(initial=3, min_value=1, max_value=20)

    def __init__(self, *args, run_ids: list[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["runs"].choices = [(r, r) for r in run_ids]
