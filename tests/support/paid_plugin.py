"""A test plugin that spends the price it is given, and estimates exactly that."""

from __future__ import annotations

from resources.plugins import Plugin, PluginParams, StepContext


class PaidParams(PluginParams):
    price: float


def paid_plugin(calls: list[str]) -> Plugin:
    """`run: paid`: appends the step id to `calls` (so tests see which calls were made)."""

    def run(params: PaidParams, ctx: StepContext) -> dict[str, float]:
        calls.append(ctx.step_id)
        ctx.add_cost(params.price)
        return {"price": params.price}

    return Plugin(
        name="paid",
        params_model=PaidParams,
        run=run,
        description="Spends its price.",
        estimate_cost=lambda params, ctx: params.price,
    )
