"""Errors the engine raises for bad input; messages are shown to end users as they are."""


class EngineError(Exception):
    """Base of every error the engine raises on purpose (bad data, layer, checkpoint)."""


class DatasetError(EngineError):
    """The probe dataset cannot be read: the message names the file and the fix."""


class LayerError(EngineError):
    """A requested layer does not exist in the model: the message lists close names."""


class CheckpointError(EngineError):
    """A checkpoint does not fit the chosen architecture or cannot be loaded safely."""
