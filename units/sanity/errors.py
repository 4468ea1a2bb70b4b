"""The sanity app's refusal: one exception whose message says why and what to do; views show it as it is."""


class SanityError(Exception):
    """A sanity-check action was refused; the message says why and what to do."""
