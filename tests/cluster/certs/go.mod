// Writes the test control plane's keys and certificates. Standard library only, so a fresh
// machine needs nothing but Go (no openssl, whose CLI differs between versions).
module athens-operator/tests/cluster/certs

go 1.25.0
