# Inputs of deploy/oci/main.tf. Not tested against a tenancy: plan before you apply.

variable "tenancy_ocid" {
  description = "OCID of the tenancy (dynamic groups and tenancy-level policies live here)."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment holding the identity domains, where the Events rule and the topic are created (the tenancy OCID for the Default domain)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "iamflow"
}

variable "webhook_host" {
  description = "Public host name of ingest, with a certificate from a public CA (e.g. iamflow.example.com)."
  type        = string
}

variable "webhook_path" {
  description = "ingest.path."
  type        = string
  default     = "/v1/events"
}

variable "webhook_username" {
  description = "ingest.username."
  type        = string
  default     = "iamflow"
}

variable "webhook_password" {
  description = "The webhook password (the secret ingest.password refers to). Stored in the subscription URL and in the Terraform state."
  type        = string
  sensitive   = true
}

variable "max_retry_duration_ms" {
  description = "How long Notifications retries a delivery, in ms (default 2 h). Keep nats.streams.duplicate_window above it."
  type        = number
  default     = 7200000
}

variable "event_types" {
  description = "Identity event types iamflow acts on."
  type        = list(string)
  default = [
    "com.oraclecloud.identitycontrolplane.createuser",
    "com.oraclecloud.identitycontrolplane.createfederateduser",
    "com.oraclecloud.identitycontrolplane.updateuser",
    "com.oraclecloud.identitycontrolplane.deleteuser",
    "com.oraclecloud.identitycontrolplane.activateuser",
    "com.oraclecloud.identitycontrolplane.deactivateuser",
    "com.oraclecloud.identitycontrolplane.updateusercapabilities",
    "com.oraclecloud.identitycontrolplane.creategroup",
    "com.oraclecloud.identitycontrolplane.updategroup",
    "com.oraclecloud.identitycontrolplane.deletegroup",
    "com.oraclecloud.identitycontrolplane.addusertogroup",
    "com.oraclecloud.identitycontrolplane.removeuserfromgroup",
  ]
}

variable "workload_matching_rule" {
  description = "Dynamic group matching rule for the iamflow workload (resource principal). Empty: no dynamic group or policy is created."
  type        = string
  default     = ""
  # e.g. "ALL {resource.type = 'computecontainerinstance', resource.compartment.id = 'ocid1.compartment...'}"
}

variable "secrets_compartment_name" {
  description = "Name of the compartment holding iamflow's Vault secrets (policies name compartments by name)."
  type        = string
  default     = "iamflow-secrets"
}

variable "secret_name_pattern" {
  description = "Only secrets whose name matches this pattern may be read."
  type        = string
  default     = "/iamflow-*/"
}
