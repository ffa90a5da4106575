locals {
  alert_email = var.alert_email == null ? "" : trimspace(var.alert_email)
  alerts      = { for key, policy in local.alert_policies : key => policy if local.alert_email != "" }

  # NOTE: The 5xx policy counts every Cloud Run service in the project, not
  # only the CRM functions, so keep other workloads out of this project.
  alert_policies = {
    function-5xx = {
      display_name = "CRM function returned 5xx"
      filter       = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      aligner      = "ALIGN_SUM"
    }
    gmail-push-dead-letter = {
      display_name = "CRM Gmail notification dead-lettered"
      filter       = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.gmail_push_dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      aligner      = "ALIGN_MAX"
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  count = local.alert_email == "" ? 0 : 1

  project      = var.project_id
  display_name = "CRM alerts"
  type         = "email"
  labels = {
    email_address = local.alert_email
  }
  user_labels = local.labels

  depends_on = [google_project_service.service]
}

# Each policy fires when its metric is above zero in a 5-minute window.
resource "google_monitoring_alert_policy" "alert" {
  for_each = local.alerts

  project      = var.project_id
  display_name = each.value.display_name
  combiner     = "OR"
  user_labels  = local.labels

  conditions {
    display_name = each.value.display_name
    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = each.value.aligner
      }
    }
  }

  notification_channels = [google_monitoring_notification_channel.email[0].id]
}
