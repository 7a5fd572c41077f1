# Helpers shared by maestro.workflow and maestro.step: tenant lookup and allow-list matching.
package maestro.lib

import rego.v1

# The tenant's entry in policies/data/tenants.json; undefined for an unknown tenant.
tenant(name) := data.tenants[name]

# An allow-list entry matches a value when it is "*", the value itself, or a prefix ending in
# "*" ("ollama.*", "openai/gpt-4o*"). Globs stop at nothing: "*" covers dots and slashes.
allowed(list, value) if value in list

allowed(list, value) if "*" in list

allowed(list, value) if {
	some pattern in list
	endswith(pattern, "*")
	startswith(value, trim_suffix(pattern, "*"))
}

# Hosts: a public name or address is allowed by "*", "example.com" or "*.example.com";
# private, loopback and link-local addresses only by their exact host in the list.
host_allowed(list, host) if {
	host.address == "public"
	some pattern in list
	public_host_matches(pattern, host.host)
}

host_allowed(list, host) if {
	host.address != "public"
	host.host in list
}

public_host_matches("*", _)

public_host_matches(pattern, name) if pattern == name

public_host_matches(pattern, name) if {
	startswith(pattern, "*.")
	endswith(name, trim_prefix(pattern, "*"))
}

# The engines add data.maestro_meta.policy_version (a hash of these files and the data).
default policy_version := "unversioned"

policy_version := data.maestro_meta.policy_version
