# Inputs of deploy/oci/main.tf. Not tested against a tenancy: plan before you apply.

variable "tenancy_ocid" {
  description = "OCID of the tenancy (dynamic groups and tenancy-level policies live here)."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment holding the identity domains, where the Events rule and the topic are created (the tenancy OCID for the Default domain)."
  type        = string
}

variable "notifications_compartment_ocid" {
  description = "Compartment for the topic and its subscriptions. Give them one of their own where only iamflow's operators hold any verb on ons-subscriptions: listing subscriptions shows their URLs, password included. Empty: compartment_ocid."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "iamflow"
}

variable "webhook_host" {
  description = "Public host name of ingest, with a certificate from a public CA (e.g. iamflow.example.com)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+(:[0-9]+)?$", var.webhook_host))
    error_message = "The webhook_host must be a host name (and optional port), without scheme, path or credentials."
  }
}

variable "webhook_path" {
  description = "ingest.path."
  type        = string
  default     = "/v1/events"
  validation {
    condition     = can(regex("^/[A-Za-z0-9._~/-]*$", var.webhook_path))
    error_message = "The webhook_path must start with / and hold only letters, digits and . _ ~ / -."
  }
}

variable "webhook_username" {
  description = "ingest.username."
  type        = string
  default     = "iamflow"
  validation {
    condition     = can(regex("^[A-Za-z0-9._~-]+$", var.webhook_username))
    error_message = "The webhook_username may hold only letters, digits and . _ ~ - (characters the subscription URL needs no encoding for)."
  }
}

variable "webhook_passwords" {
  description = "Webhook passwords by label, one HTTPS subscription each (ingest.password and, while rotating, ingest.previous_password). Stored in the subscription URLs and in the Terraform state."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = length(var.webhook_passwords) >= 1 && length(var.webhook_passwords) <= 2
    error_message = "Give one webhook password, or two while rotating (ingest accepts password and previous_password)."
  }
  validation {
    condition     = alltrue([for p in values(var.webhook_passwords) : can(regex("^[A-Za-z0-9._~-]{32,}$", p))])
    error_message = "Each webhook password must be at least 32 letters, digits or . _ ~ - (e.g. openssl rand -hex 32): other characters would need encoding in the subscription URL."
  }
  validation {
    condition     = alltrue([for k in keys(var.webhook_passwords) : can(regex("^[a-z0-9][a-z0-9-]{0,30}$", k))])
    error_message = "Each label must be 1 to 31 lower-case letters, digits or -, e.g. 2025-06."
  }
}

variable "max_retry_duration_ms" {
  description = "How long Notifications retries a delivery, in ms (OCI's default, 2 h, is not sent). Keep nats.streams.duplicate_window above it."
  type        = number
  default     = 7200000
  validation {
    condition     = var.max_retry_duration_ms >= 60000
    error_message = "The max_retry_duration_ms must be at least 60000 (one minute)."
  }
}

variable "event_types" {
  description = "Identity event types iamflow acts on."
  type        = list(string)
  default = [
    "com.oraclecloud.identitycontrolplane.createuser",
    "com.oraclecloud.identitycontrolplane.createfederateduser",
    "com.oraclecloud.identitycontrolplane.updateuser",
    "com.oraclecloud.identitycontrolplane.updateuserstate",
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

variable "secrets_compartment_ocid" {
  description = "OCID of the compartment holding iamflow's Vault secrets (named by OCID, so a nested compartment needs no Parent:Child path)."
  type        = string
  default     = ""
  validation {
    condition     = var.secrets_compartment_ocid == "" || can(regex("^ocid1\\.(compartment|tenancy)\\.", var.secrets_compartment_ocid))
    error_message = "The secrets_compartment_ocid must be a compartment (or tenancy) OCID."
  }
}

variable "secret_name_pattern" {
  description = "Only secrets whose name matches this pattern may be read."
  type        = string
  default     = "/iamflow-*/"
}
