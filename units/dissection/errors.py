"""The compute side's refusal: one exception whose message is shown to the user as it is."""


class UnitsError(Exception):
    """Refused input or state; the message is shown to the user as it is."""
