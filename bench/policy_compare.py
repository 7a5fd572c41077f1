"""Embedded `maestro.step` decisions: this tree vs a git revision, side by side in one run.

Run: `.venv/bin/python bench/policy_compare.py [REV]` (default `237898b`, the merge of the policy
gate). "before" is the revision's Rego (read with `git show`) queried the way that revision did
(regopy's `set_input(dict(payload))` and `query_bundle_entrypoint`, its `Output` parsed);
"after" is `EmbeddedPolicyEngine` on this tree's policies. Both see the same 10,000 inputs of
bench/policy.py, interleaved in blocks of 500 after a warm-up; every decision must agree.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fmt_row
from policy import DECISIONS, payload, percentile, time_interleaved

from resources.policy.engine import (
    Decision,
    EmbeddedPolicyEngine,
    PolicySet,
    decision_from_result,
    input_digest,
)

ROOT = Path(__file__).resolve().parents[1]


class StockRegopyEngine(EmbeddedPolicyEngine):
    """The decide() of the revision before the fast path: regopy's own input and output."""

    def decide(self, kind: Any, payload: Any) -> Decision:
        digest = input_digest(payload)
        entrypoint = f"maestro/{kind}/decision"
        self._interpreter.set_input(dict(payload))
        output = self._interpreter.query_bundle_entrypoint(self._bundle, entrypoint)
        expressions = output.results[0].expressions if output.results else []
        return decision_from_result(kind, expressions[0], digest, self.policy_version)


def policies_at(rev: str, into: Path) -> Path:
    """The revision's policies/ folder, written under `into`."""
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "policies/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        text = subprocess.run(
            ["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_bytes(text)
    return into / "policies"


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "237898b"
    inputs = [payload(i) for i in range(DECISIONS)]
    with tempfile.TemporaryDirectory() as tmp:
        engines = {
            f"before ({rev})": StockRegopyEngine(PolicySet.load(policies_at(rev, Path(tmp)))),
            "after (this tree)": EmbeddedPolicyEngine(PolicySet.load()),
        }
    samples, decisions = time_interleaved(engines, inputs)
    answers = {name: [(d.allow, d.reasons) for d in ds] for name, ds in decisions.items()}
    print(f"{DECISIONS:,} embedded maestro.step decisions per variant, interleaved\n")
    print(fmt_row("variant", "p50 ms", "p99 ms", "best ms"))
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(fmt_row(name, f"{p50:.3f}", f"{p99:.3f}", f"{min(values):.3f}"))
    before, after = samples.values()
    ratio = percentile(after, 0.5) / percentile(before, 0.5)
    print(fmt_row("ratio after/before (p50)", f"{ratio:.2f}"))
    first, second = answers.values()
    print(f"identical decisions (allow and reasons): {first == second}")


if __name__ == "__main__":
    main()
