"""A reserved plugin name for tests: no built-in name is reserved at the moment, but the
mechanism (`ReservedPlugin`: parameters checked now, "not installed yet" at run time) stays."""

from __future__ import annotations

from resources.plugins import BUILTIN_PLUGINS, PluginParams, PluginRegistry, ReservedPlugin


class GeocodeParams(PluginParams):
    address: str


class Geocode(ReservedPlugin[GeocodeParams]):
    name = "acme.geocode"
    aliases = ("geocode",)
    description = "Geocode an address (ships with a later package)."
    params_model = GeocodeParams
    reserved_for = "the acme geocoding package"


GEOCODE = Geocode()


def registry_with_reserved() -> PluginRegistry:
    """The built-in plugins plus the reserved `acme.geocode`."""
    return PluginRegistry([*BUILTIN_PLUGINS, GEOCODE])
