"""The quality rule's arithmetic, free of Django so the load benchmark's simulated crowd applies the very
same rule (units/crowd/quality.py applies it to stored answers)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityRule:
    min_pass_rate: float
    min_answers: int = 10

    def blocks(self, record: CheckRecord) -> bool:
        return (record.answers >= self.min_answers and record.checks > 0
                and record.passed / record.checks < self.min_pass_rate)


@dataclass(frozen=True)
class CheckRecord:
    answers: int
    checks: int
    passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.checks if self.checks else None
