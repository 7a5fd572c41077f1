"""A test plugin that spends the price it is given, and estimates exactly that."""

from __future__ import annotations

from resources.plugins import Plugin, PluginParams, StepContext


class PaidParams(PluginParams):
    price: float


class Paid(Plugin[PaidParams]):
    """`run: paid`: appends the step id to `calls` (so tests see which calls were made)."""

    name = "paid"
    description = "Spends its price."
    params_model = PaidParams

    def __init__(self, calls: list[str]):
        self.calls = calls

    def run(self, params: PaidParams, ctx: StepContext) -> dict[str, float]:
        self.calls.append(ctx.step_id)
        ctx.add_cost(params.price)
        return {"price": params.price}

    def estimate_cost(self, params: PaidParams, ctx: StepContext) -> float:
        return params.price


def paid_plugin(calls: list[str]) -> Paid:
    return Paid(calls)
