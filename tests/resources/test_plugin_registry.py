"""Plugins from other packages (the `maestro.plugins` entry-point group) and shell output in
Dagster's compute logs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from pydantic import BaseModel

from resources.plugins import BUILTIN_PLUGINS, Plugin, PluginRegistry, StepContext, default_registry
from resources.plugins.echo import ECHO
from tests.support.compiling import compile_text
from tests.support.paths import PROJECT_ROOT


def _install_plugin_package(site: Path) -> None:
    """A real distribution on sys.path: importlib.metadata finds its entry points."""
    package = site / "acme_maestro_plugins"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel, ConfigDict

            from resources.plugins import Plugin


            class ShoutParams(BaseModel):
                model_config = ConfigDict(extra="forbid")
                text: str


            class ScrapeParams(BaseModel):
                url: str


            class Shout(Plugin[ShoutParams]):
                name = "acme.shout"
                description = "Upper-case a text."
                params_model = ShoutParams

                def run(self, params, ctx):
                    return {"loud": params.text.upper()}


            class Scraper(Plugin[ScrapeParams]):
                name = "acme.geocode"
                aliases = ("geocode",)
                description = "A geocoder that fills the name tests reserve."
                params_model = ScrapeParams

                def run(self, params, ctx):
                    return {"located": params.url}


            SHOUT = Shout()
            SCRAPER = Scraper  # a class is instantiated by the registry
            """
        )
    )
    dist = site / "acme_maestro_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-maestro-plugins\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[maestro.plugins]\nshout = acme_maestro_plugins:SHOUT\n"
        "scraper = acme_maestro_plugins:SCRAPER\n"
    )


def test_installed_packages_add_plugins_and_fill_reserved_names(tmp_path: Path) -> None:
    """`acme.geocode` is reserved in the registry the probe builds (tests/support): the
    installed package's implementation replaces the reservation."""
    _install_plugin_package(tmp_path)
    probe = textwrap.dedent(
        """
        import json
        import dagster as dg
        from resources.plugins import PluginRegistry, default_registry
        from tests.support.compiling import compile_text
        from tests.support.reserved_plugin import GEOCODE

        registry = PluginRegistry([GEOCODE, *default_registry()])  # reserved, then installed

        job = compile_text('''
        name: uses_plugins
        steps:
          - id: loud
            run: acme.shout
            with: {text: hello}
          - id: page
            run: geocode
            with: {url: "http://127.0.0.1/"}
        ''', registry=registry).job
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance)
        print(json.dumps([result.output_for_node("loud"), result.output_for_node("page")]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        {"loud": "HELLO"},
        {"located": "http://127.0.0.1/"},
    ]


def test_without_the_package_the_plugin_is_unknown() -> None:
    assert default_registry().get("acme.shout") is None
    assert default_registry().get("acme.geocode") is None


def test_two_implementations_of_one_name_are_refused() -> None:
    registry = PluginRegistry(BUILTIN_PLUGINS)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type(ECHO)())


def test_shell_output_lands_in_the_compute_logs_with_secrets_redacted(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAESTRO_TEST_TOKEN", "tok-5f1e-very-secret")
    job = compile_text(
        textwrap.dedent(
            """
            name: logs
            secrets: [MAESTRO_TEST_TOKEN]
            steps:
              - id: talk
                run: shell
                with:
                  command: "echo line-one; echo token=$T; echo oops >&2"
                  shell: true
                  env: {T: "{{ secrets.MAESTRO_TEST_TOKEN }}"}
            """
        )
    ).job
    result = job.execute_in_process(instance=instance)
    assert result.success
    [captured] = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "LOGS_CAPTURED"
    ]
    logs = instance.compute_log_manager.get_log_data(
        [result.run_id, "compute_logs", captured.file_key]
    )
    assert logs.stdout.decode() == "line-one\ntoken=***\n"
    assert "oops\n" in logs.stderr.decode()
    assert result.output_for_node("talk")["stdout"] == "line-one\ntoken=***\n"


class GreetingResource(dg.ConfigurableResource):
    """A resource a plugin declares by key; Dagster supplies it to the op."""

    salutation: str

    def greet(self, name: str) -> str:
        return f"{self.salutation}, {name}"


def test_a_plugin_receives_the_dagster_resources_it_declares(
    instance: dg.DagsterInstance,
) -> None:
    class GreetParams(BaseModel):
        name: str

    class Greet(Plugin[GreetParams]):
        name = "greet"
        description = "Greet through a resource."
        params_model = GreetParams
        resource_keys = frozenset({"greeter"})

        def run(self, params: GreetParams, ctx: StepContext) -> dict[str, str]:
            return {"text": ctx.resources["greeter"].greet(params.name)}

    greet = Greet()
    registry = PluginRegistry([*BUILTIN_PLUGINS, greet])
    greeter = GreetingResource(salutation="Hello")
    compiled = compile_text(
        "name: g\nsteps:\n  - {id: hi, run: greet, with: {name: Ada}}\n",
        registry=registry,
        resources={"greeter": greeter},
    )
    op = compiled.job.graph.node_named("hi").definition
    assert op.required_resource_keys == {"greeter", "policy"}
    result = compiled.job.execute_in_process(instance=instance)
    assert result.output_for_node("hi") == {"text": "Hello, Ada"}
