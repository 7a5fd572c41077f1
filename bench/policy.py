"""Per-decision latency of `maestro.step`: the embedded engine vs the OPA REST path on loopback.

Run: `.venv/bin/python bench/policy.py`. 10,000 step decisions through each engine, interleaved
in blocks of 500 (embedded, REST, embedded, ...), after a warm-up of 200 each. The REST path is
`OpaServerPolicyEngine` (opa-python-client, HTTP keep-alive) against tests/opa_standin.py, the
OPA Data API stand-in on regopy, in a thread of this process (OPA has no binary in our
registries). Inputs vary per decision (step id, costs, hosts) and a tenth of them are denials.
Targets (reported, never asserted; exit code 0): embedded p99 <= 1 ms, REST p99 <= 5 ms.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fmt_row, verdict

from resources.policy.engine import (
    Decision,
    EmbeddedPolicyEngine,
    OpaServerPolicyEngine,
    PolicyEngine,
    PolicySet,
)
from resources.policy.inputs import step_input
from tests.support.http_server import serve_http
from tests.support.opa_standin import OpaStandIn, handler_for

DECISIONS = 10_000
BLOCK = 500
WARMUP = 200
TARGETS_MS = {"embedded": 1.0, "rest": 5.0}


def payload(i: int) -> dict[str, Any]:
    deny = i % 10 == 0
    return step_input(
        tenant="acme",
        run_tenant="acme",
        environment="prod",
        workflow="site-digest",
        run_id=f"run-{i // 100}",
        step_id=f"step_{i}",
        plugin="shell" if deny else "litellm.generate",
        params={
            "model": "openai/gpt-4o-mini",
            "url": f"https://www{i % 7}.acme.example/page/{i}",
        },
        secrets=("ACME_OPENAI_KEY",),
        estimated_cost_usd=0.001 * (i % 5),
        run_spend_usd=0.01 * (i % 50),
        run_budget_usd=2.0,
        tenant_spend_usd=12.5,
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_interleaved(
    engines: Mapping[str, PolicyEngine], inputs: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, list[float]], dict[str, list[Decision]]]:
    """Each engine's `maestro.step` latencies (ms) and decisions, in blocks of BLOCK inputs taken
    in turn, after WARMUP decisions each; the garbage collector is off while timing."""
    for engine in engines.values():
        for item in inputs[:WARMUP]:
            engine.decide("step", item)
    samples: dict[str, list[float]] = {name: [] for name in engines}
    decisions: dict[str, list[Decision]] = {name: [] for name in engines}
    gc.disable()
    try:
        for start in range(0, len(inputs), BLOCK):
            for name, engine in engines.items():
                for item in inputs[start : start + BLOCK]:
                    began = time.perf_counter()
                    decision = engine.decide("step", item)
                    samples[name].append((time.perf_counter() - began) * 1000)
                    decisions[name].append(decision)
    finally:
        gc.enable()
    return samples, decisions


def main() -> None:
    policies = PolicySet.load()
    inputs = [payload(i) for i in range(DECISIONS)]
    expected_denials = sum(1 for i in range(DECISIONS) if i % 10 == 0)
    with serve_http(handler_for(OpaStandIn())) as url:
        rest = OpaServerPolicyEngine(url)
        rest.push(policies)
        engines: dict[str, PolicyEngine] = {
            "embedded": EmbeddedPolicyEngine(policies),
            "rest": rest,
        }
        samples, decisions = time_interleaved(engines, inputs)
    denials = {name: sum(not d.allow for d in answers) for name, answers in decisions.items()}
    print(f"{DECISIONS:,} maestro.step decisions per engine ({expected_denials:,} denials)\n")
    print(fmt_row("engine", "p50 ms", "p99 ms", "mean ms", "max ms", "denials"))
    for name, values in samples.items():
        print(
            fmt_row(
                name,
                f"{percentile(values, 0.50):.3f}",
                f"{percentile(values, 0.99):.3f}",
                f"{statistics.fmean(values):.3f}",
                f"{max(values):.2f}",
                f"{denials[name]:,}",
            )
        )
    ratio = percentile(samples["rest"], 0.5) / percentile(samples["embedded"], 0.5)
    print(fmt_row("ratio rest/embedded (p50)", f"{ratio:.2f}"))
    print()
    for name, target in TARGETS_MS.items():
        p99 = percentile(samples[name], 0.99)
        print(f"target: {name} p99 <= {target:g} ms: {verdict(p99 <= target)} ({p99:.3f} ms)")
    same = denials["embedded"] == denials["rest"] == expected_denials
    print(f"both engines denied exactly the expected inputs: {same}")


if __name__ == "__main__":
    main()
