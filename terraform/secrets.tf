locals {
  # Secret ID => environment variable that exposes its latest version.
  secrets = merge(
    { for id in var.source_ids : "crm-source-${id}" => "CRM_SECRET_${upper(id)}" },
    {
      "crm-unsubscribe-key" = "CRM_UNSUBSCRIBE_KEY"
      "crm-chat-webhooks"   = "CRM_CHAT_WEBHOOKS"
    },
  )
}

# Terraform creates the secrets but never their values, so no secret value
# reaches the state file. Add a version to each secret before the functions
# are deployed, because a function whose secret has no version fails to start.
resource "google_secret_manager_secret" "secret" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.key
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.service]
}
