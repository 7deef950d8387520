"""A round of gates: every gate checked on one staged snapshot of the work tree, and the tree it passed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent_runner.core.protocols import Gate, GateContext, Measurement
from agent_runner.core.result import GateResult, GateVerdict, Outcome
from agent_runner.gates import workdiff
from agent_runner.gates.report import render_report
from agent_runner.worker.failure import JobFailed

log = logging.getLogger(__name__)

GateCheck = Callable[[], list[GateResult]]


class GateRound:
    """Checks every gate against one staged snapshot of the working tree and remembers that tree."""

    def __init__(self, gates: list[Gate], baselines: dict[str, Measurement | None], ctx: GateContext) -> None:
        self.gates, self.baselines, self.ctx = gates, baselines, ctx
        self.tree: str | None = None
        self.stamp: workdiff.IndexStamp | None = None

    def __call__(self) -> list[GateResult]:
        """Run one round: the working tree is staged and diffed once for all gates."""
        with workdiff.snapshot(self.ctx.checkout) as tree:
            stamp = workdiff.index_stamp(self.ctx.checkout)  # before the gates run the tests
            results = self.unfrozen()
        self.tree, self.stamp = tree, stamp
        return results

    def unfrozen(self) -> list[GateResult]:
        """Run one round with each gate staging the working tree itself (as it is at that moment)."""
        self.tree = None
        return [gate.check(self.ctx, self.baselines[gate.name]) for gate in self.gates]

    def checked_tree(self, require_green: Callable[[list[GateResult]], None]) -> str:
        """Return the tree the last green round checked, as the work tree still holds it.

        When the tests changed the tree, the gates check it once more (a staged snapshot again); when that
        round's tests change it again, no tree the gates passed is left to commit: the attempt is refused.
        """
        checkout, tree = self.ctx.checkout, self.tree
        if tree is not None and workdiff.is_unchanged(checkout, tree, self.stamp):
            return tree
        log.info("%s: the tree changed while the gates ran; checking it again", self.ctx.task.id)
        require_green(self())
        tree = self.tree
        if tree is None or not workdiff.is_unchanged(checkout, tree, self.stamp):
            raise JobFailed(
                Outcome.REJECTED,
                "the work tree changed while the gates ran (the tests rewrote files again when the gates "
                "checked it once more): no tree the gates passed is left to commit",
            )
        return tree


def is_green(results: list[GateResult]) -> bool:
    """Return whether every gate passed or was skipped."""
    return all(r.verdict in (GateVerdict.PASS, GateVerdict.SKIP) for r in results)


def gate_report(results: list[GateResult]) -> str:
    """Return the gate report (table and failures) for the agent and the failure reason."""
    return str(render_report(results))
