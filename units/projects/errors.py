"""The projects app's refusals: one base whose message is shown to the user as it is."""


class ProjectError(Exception):
    """Refused input or state (a duplicate name, the last owner's removal); shown as it is."""
