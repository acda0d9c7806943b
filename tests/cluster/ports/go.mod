// Picks free loopback ports for the test control plane. Standard library only.
module athens-operator/tests/cluster/ports

go 1.25.0
