"""A Python client for a UnitCrowd server's REST API, and the `unitcrowd` command built on it.

uc = UnitCrowd(url, token=...) or UnitCrowd(url, username=..., password=...). Needs only requests;
pandas (`to_pandas()`) and Pillow (`pictures()`) are optional extras.
"""
from .client import UnitCrowd
from .errors import (
    AuthenticationError, ConflictError, JobFailed, NotFound, PermissionDenied, RateLimited, ServerUnavailable,
    UnitCrowdError, ValidationError,
)
from .models import Dataset, Export, HitBatch, Job, Label, LabelTable, Layer, Network, Unit

__all__ = [
    "UnitCrowd", "UnitCrowdError", "AuthenticationError", "PermissionDenied", "NotFound", "ValidationError",
    "ConflictError", "RateLimited", "ServerUnavailable", "JobFailed", "Network", "Dataset", "Job", "Layer", "Unit",
    "Label", "LabelTable", "HitBatch", "Export",
]
