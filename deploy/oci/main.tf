# OCI resources that deliver identity events to iamflow's webhook, and the
# dynamic group and policy for its resource principal (docs/oci-setup.md).
#
# NOT TESTED against a tenancy: run `terraform plan` and read it before
# applying. The confidential applications in each identity domain (and their
# app roles) are not created here.

terraform {
  required_version = ">= 1.5"
  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 6.0"
    }
  }
}

# Notifications topic the Events rule publishes to.
resource "oci_ons_notification_topic" "events" {
  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-identity-events"
  description    = "Identity domain changes for iamflow ingest"
}

# HTTPS (Custom URL) subscription: Basic auth credentials in the URL. OCI
# sends a SubscriptionConfirmation that ingest confirms (ingest.confirm).
resource "oci_ons_subscription" "webhook" {
  compartment_id = var.compartment_ocid
  topic_id       = oci_ons_notification_topic.events.id
  protocol       = "CUSTOM_HTTPS"
  endpoint       = "https://${urlencode(var.webhook_username)}:${urlencode(var.webhook_password)}@${var.webhook_host}${var.webhook_path}"

  delivery_policy = jsonencode({
    backoffRetryPolicy = {
      maxRetryDuration = var.max_retry_duration_ms
      policyType       = "EXPONENTIAL"
    }
  })
}

# Events rule: identity control plane events -> the topic.
resource "oci_events_rule" "identity" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-identity-changes"
  description    = "Identity domain user, group and membership changes to iamflow"
  is_enabled     = true
  condition      = jsonencode({ eventType = var.event_types })

  actions {
    actions {
      action_type = "ONS"
      is_enabled  = true
      topic_id    = oci_ons_notification_topic.events.id
      description = "to iamflow ingest"
    }
  }
}

# Resource principal of the iamflow workload, for the domain token exchange
# (auth: resource_principal) and vault: secret references.
resource "oci_identity_dynamic_group" "iamflow" {
  count          = var.workload_matching_rule == "" ? 0 : 1
  compartment_id = var.tenancy_ocid
  name           = var.name_prefix
  description    = "iamflow workloads"
  matching_rule  = var.workload_matching_rule
}

resource "oci_identity_policy" "iamflow_secrets" {
  count          = var.workload_matching_rule == "" ? 0 : 1
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-read-secrets"
  description    = "iamflow reads its own Vault secrets, nothing else"
  statements = [
    "allow dynamic-group ${oci_identity_dynamic_group.iamflow[0].name} to read secret-bundles in compartment ${var.secrets_compartment_name} where target.secret.name = ${var.secret_name_pattern}",
  ]
}

output "topic_id" {
  value = oci_ons_notification_topic.events.id
}

output "subscription_id" {
  description = "Pending until ingest confirms it."
  value       = oci_ons_subscription.webhook.id
}

output "events_rule_id" {
  value = oci_events_rule.identity.id
}
