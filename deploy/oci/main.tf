# OCI resources that deliver identity events to iamflow's webhook, and the
# dynamic group and policy that let its workload read its Vault secrets
# (docs/oci-setup.md).
#
# NOT TESTED against a tenancy: run `terraform plan` and read it before
# applying. deploy/terraform_test.go parses these files and checks references,
# required arguments, validations and the policy syntax, but not the provider.
# The confidential applications in each identity domain (and their app roles)
# are not created here.

terraform {
  required_version = ">= 1.5"
  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 6.0"
    }
  }
}

locals {
  # The topic and its subscriptions may live apart from the rule ("the
  # resources you specify for actions do not have to be in the same
  # compartment as the rule"), in a compartment where nobody else may list
  # subscriptions: their URLs carry the webhook password.
  notifications_compartment_ocid = var.notifications_compartment_ocid != "" ? var.notifications_compartment_ocid : var.compartment_ocid
}

# Notifications topic the Events rule publishes to.
resource "oci_ons_notification_topic" "events" {
  compartment_id = local.notifications_compartment_ocid
  name           = "${var.name_prefix}-identity-events"
  description    = "Identity domain changes for iamflow ingest"
}

# HTTPS (Custom URL) subscriptions, one per webhook password: Basic auth
# credentials in the URL. OCI sends a SubscriptionConfirmation that ingest
# confirms (ingest.confirm). A subscription's endpoint cannot be updated (the
# provider replaces the resource), so a password is rotated by adding a
# subscription and later removing the old one (docs/oci-setup.md, "Rotating
# the webhook password"). The keys are labels, not secrets.
#
# The passwords go into the URL unencoded: variables.tf accepts only
# characters that need no percent-encoding in user-info, because whether
# Notifications decodes it before building the Authorization header is not
# documented (and urlencode would turn a space into "+").
resource "oci_ons_subscription" "webhook" {
  for_each       = nonsensitive(toset(keys(var.webhook_passwords)))
  compartment_id = local.notifications_compartment_ocid
  topic_id       = oci_ons_notification_topic.events.id
  protocol       = "CUSTOM_HTTPS"
  endpoint       = "https://${var.webhook_username}:${var.webhook_passwords[each.key]}@${var.webhook_host}${var.webhook_path}"

  # CreateSubscription takes no delivery policy: the provider sends it only
  # with UpdateSubscription, so a custom retry duration needs a second apply,
  # and GetSubscription may not return it, so verify it with
  # `oci ons subscription list` (docs/oci-setup.md). The default, 2 h, is
  # OCI's own, so nothing is sent for it.
  delivery_policy = var.max_retry_duration_ms == 7200000 ? null : jsonencode({
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

# The iamflow workload's resource principal, for vault: secret references.
# Only reading secrets is granted: no documented grant lets a resource
# principal call an identity domain's admin API, so domains are reached with
# a confidential application (docs/oci-setup.md).
resource "oci_identity_dynamic_group" "iamflow" {
  count          = var.workload_matching_rule == "" ? 0 : 1
  compartment_id = var.tenancy_ocid
  name           = var.name_prefix
  description    = "iamflow workloads"
  matching_rule  = var.workload_matching_rule
}

# The compartment is named by OCID: a policy in the tenancy naming a nested
# compartment by name would need its Parent:Child path.
resource "oci_identity_policy" "iamflow_secrets" {
  count          = var.workload_matching_rule == "" ? 0 : 1
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-read-secrets"
  description    = "iamflow reads its own Vault secrets, nothing else"
  statements = [
    "allow dynamic-group ${oci_identity_dynamic_group.iamflow[0].name} to read secret-bundles in compartment id ${var.secrets_compartment_ocid} where target.secret.name = ${var.secret_name_pattern}",
  ]

  lifecycle {
    precondition {
      condition     = var.secrets_compartment_ocid != ""
      error_message = "Set secrets_compartment_ocid: the workload may read secrets in that compartment only."
    }
  }
}

output "topic_id" {
  value = oci_ons_notification_topic.events.id
}

output "subscription_ids" {
  description = "One per webhook password label; each is Pending until ingest confirms it."
  value       = { for label, s in oci_ons_subscription.webhook : label => s.id }
}

output "events_rule_id" {
  value = oci_events_rule.identity.id
}
