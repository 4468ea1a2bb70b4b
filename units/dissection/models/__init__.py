"""Domain models of the compute side: what was dissected and what it found."""
from .dissection import (
    DissectionJob,
    Exemplar,
    Layer,
    Unit,
    UnitConceptScore,
)
from .registry import Concept, Network, ProbeDataset

__all__ = [
    "Concept",
    "DissectionJob",
    "Exemplar",
    "Layer",
    "Network",
    "ProbeDataset",
    "Unit",
    "UnitConceptScore",
]
