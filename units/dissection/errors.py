"""The dissection app's refusals: one base whose message is shown to the user as it is."""


class DissectionError(Exception):
    """Refused input or state; the message is shown to the user as it is."""


class UploadError(DissectionError):
    """An upload was refused; the message says which file or entry and what to do."""
