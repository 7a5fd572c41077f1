# Helpers shared by maestro.workflow and maestro.step: allow-list and host matching, version.
package maestro.lib

import rego.v1

# A tenant's entry is data.tenants[input.tenant], looked up by key in each package's `tenant`
# rule (not through a function here: rego-cpp evaluates a function call per use, which cost
# about 0.08 ms per decision).

# An allow-list entry matches a value when it is "*", the value itself, or a prefix ending in
# "*" ("ollama.*", "openai/gpt-4o*"). Globs stop at nothing: "*" covers dots and slashes.
# One else-chain rather than three definitions: the cheap membership tests answer first and the
# glob scan runs only when they fail (each extra definition costs rego-cpp a full evaluation).
allowed(list, value) := true if value in list
else := true if "*" in list
else := true if {
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
