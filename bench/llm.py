"""LLM step overhead: 500 calls through the `litellm.generate` plugin vs 500 direct
`litellm.completion` calls, to the same loopback OpenAI-compatible server, in one run.

Run: `.venv/bin/python bench/llm.py`. Variants are interleaved in batches (A, B, C, D, A, ...);
per-call medians over the batches are reported, with the ratio and the milliseconds the plugin
adds. Also shown: the Router alone (what the plugin calls) and the plugin with the budget
estimate a step makes when its workflow has `budget.max_cost_usd`. Target: ≤ 2 ms added per
call. Reported, never asserted; the exit code is 0.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.support.llm_servers`

from _common import fmt_row, noise_note, verdict

from resources.litellm_resource import LiteLLMResource, import_litellm
from resources.plugins import RunInfo, StepContext
from resources.plugins.litellm_generate import LITELLM_GENERATE, LiteLLMParams
from tests.support.llm_servers import OpenAIServer

CALLS = int(os.environ.get("BENCH_LLM_CALLS", "500"))
BATCHES = 10  # of CALLS / BATCHES calls per variant
TARGET_MS = 2.0
MESSAGES = [{"role": "user", "content": "Say hello in five words."}]


class _QuietLog:
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...


def main() -> None:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    litellm = import_litellm()
    litellm.turn_off_message_logging = True
    with OpenAIServer() as server, tempfile.TemporaryDirectory() as cache:
        deployment = {
            "model_name": "gpt-4o-mini",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": server.api_base,
                "api_key": "sk-bench",
            },
        }
        resource = LiteLLMResource(model_list=[deployment], num_retries=0, cache_dir=cache)
        client = resource.client()
        assert LITELLM_GENERATE.run is not None and LITELLM_GENERATE.estimate_cost is not None
        run, estimate = LITELLM_GENERATE.run, LITELLM_GENERATE.estimate_cost
        params = LiteLLMParams(model="gpt-4o-mini", messages=MESSAGES)

        def context() -> StepContext:
            return StepContext(
                step_id="bench",
                run=RunInfo("run", "bench", "default", "dev", ""),
                log=_QuietLog(),
                resources={"litellm": resource},
            )

        def direct() -> None:
            litellm.completion(
                model="openai/gpt-4o-mini",
                api_base=server.api_base,
                api_key="sk-bench",
                messages=MESSAGES,
            )

        def router() -> None:
            client.router.completion(model="gpt-4o-mini", messages=MESSAGES)

        def plugin() -> None:
            run(params, context())

        def plugin_budget() -> None:
            ctx = context()
            estimate(params, ctx)
            run(params, ctx)

        variants: dict[str, Callable[[], None]] = {
            "direct litellm.completion": direct,
            "Router.completion": router,
            "litellm.generate plugin": plugin,
            "plugin + budget estimate": plugin_budget,
        }
        for call in variants.values():  # warm-up: clients, tokenizer, cost map
            for _ in range(20):
                call()
        per_batch = CALLS // BATCHES
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(BATCHES):
            for name, call in variants.items():
                started = time.perf_counter()
                for _ in range(per_batch):
                    call()
                samples[name].append((time.perf_counter() - started) / per_batch * 1000)
        requests = len(server.requests)

    print(f"LLM step overhead: {CALLS} calls per variant to one loopback server ({requests} total)")
    print(fmt_row("variant", "median ms", "best ms", "ratio"))
    base = statistics.median(samples["direct litellm.completion"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(fmt_row(name, f"{median:.3f}", f"{min(values):.3f}", f"{median / base:.3f}"))
    added = statistics.median(samples["litellm.generate plugin"]) - base
    via_router = statistics.median(samples["litellm.generate plugin"]) - statistics.median(
        samples["Router.completion"]
    )
    print(f"plugin adds {added:.3f} ms per call over direct litellm.completion")
    print(f"  of which the plugin itself (over Router.completion): {via_router:.3f} ms")
    print(f"target <= {TARGET_MS} ms added per call: {verdict(added <= TARGET_MS)}")
    print(noise_note(samples))


if __name__ == "__main__":
    main()
