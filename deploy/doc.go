// Package deploy holds iamflow's deployment files: the local compose stack
// (compose.yaml, compose/), a 3-node NATS cluster (nats-cluster.compose.yaml),
// OCI Terraform (oci/) and the container health-check program (httpcheck/).
// Its tests check those files without a container engine.
package deploy
