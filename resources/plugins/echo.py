"""`echo`: returns its (rendered) parameters. For demos, tests and wiring data between steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from resources.plugins.base import Plugin, StepContext


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="allow")


class Echo(Plugin[EchoParams]):
    name = "echo"
    description = "Return the step's parameters as its output."
    params_model = EchoParams

    def run(self, params: EchoParams, ctx: StepContext) -> dict[str, Any]:
        return params.model_dump()


ECHO = Echo()
