"""The doctor's result types: one Check per finding, a Report of them, and its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, WARN, FAIL = "pass", "warn", "fail"

# Exit codes of `pressroom doctor` (documented in its help and the README).
EXIT_OK, EXIT_FAIL, EXIT_WARN = 0, 1, 2


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, the verdict, the exact records read and what to change."""

    name: str
    status: str
    message: str
    records: tuple[str, ...] = ()
    fix: str = ""

    def lines(self) -> list[str]:
        """The finding as the CLI prints it: verdict line, then each record and the fix."""
        out = [f"{self.status.upper()} {self.name}: {self.message}"]
        out += [f"  read: {r}" for r in self.records]
        if self.fix and self.status != PASS:
            out.append(f"  fix: {self.fix}")
        return out


@dataclass
class Report:
    """Every check of one doctor run, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> None:
        """Record one finding."""
        self.checks.append(check)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warned(self) -> list[Check]:
        """The checks that passed with a warning."""
        return [c for c in self.checks if c.status == WARN]

    def exit_code(self, strict: bool = False) -> int:
        """0 when nothing failed (warnings allowed), 1 on any failure, 2 for warnings if strict."""
        if self.failed:
            return EXIT_FAIL
        return EXIT_WARN if strict and self.warned else EXIT_OK

    def summary(self) -> str:
        """One line: how many checks passed, warned and failed."""
        passed = len(self.checks) - len(self.failed) - len(self.warned)
        return f"{passed} passed, {len(self.warned)} warnings, {len(self.failed)} failed"
