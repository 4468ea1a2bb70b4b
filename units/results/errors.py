"""The results app's refusal: one exception whose message says why and what to do; views show it as it is."""


class ResultsError(Exception):
    """A results action that cannot be done as asked; the message says why and what to do."""
