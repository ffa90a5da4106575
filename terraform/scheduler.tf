locals {
  # attempt_deadline is how long Cloud Scheduler waits for one HTTP response.
  scheduler_jobs = {
    dispatch-outbox = {
      function         = "dispatch_outbox"
      description      = "Send due outbox messages."
      schedule         = "* * * * *"
      attempt_deadline = "60s"
      # A run that fails is replaced by the next one a minute later, so one
      # quick retry is enough and retries stop before the next run starts.
      retry_count          = 1
      max_retry_duration   = "50s"
      min_backoff_duration = "5s"
      max_backoff_duration = "10s"
    }
    gmail-watch = {
      function             = "gmail_watch"
      description          = "Renew Gmail users.watch for every connected mailbox; a watch expires after 7 days."
      schedule             = "0 6 * * *"
      attempt_deadline     = "300s"
      retry_count          = 3
      max_retry_duration   = "3600s"
      min_backoff_duration = "30s"
      max_backoff_duration = "600s"
    }
    sequence-tick = {
      function             = "sequence_tick"
      description          = "Enrol new leads in sequences and queue the sequence steps that are due."
      schedule             = "*/5 * * * *"
      attempt_deadline     = "240s"
      retry_count          = 1
      max_retry_duration   = "200s"
      min_backoff_duration = "10s"
      max_backoff_duration = "60s"
    }
    stale-deals = {
      function             = "stale_deals"
      description          = "Run the daily stale-deal check."
      schedule             = "30 8 * * *"
      attempt_deadline     = "300s"
      retry_count          = 3
      max_retry_duration   = "3600s"
      min_backoff_duration = "30s"
      max_backoff_duration = "600s"
    }
  }
}

resource "google_cloud_scheduler_job" "job" {
  for_each = local.scheduler_jobs

  project          = var.project_id
  region           = var.region
  name             = each.key
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.time_zone
  attempt_deadline = each.value.attempt_deadline

  retry_config {
    retry_count          = each.value.retry_count
    max_retry_duration   = each.value.max_retry_duration
    min_backoff_duration = each.value.min_backoff_duration
    max_backoff_duration = each.value.max_backoff_duration
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function[each.value.function].url
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      # Matches the audience that lib/entrypoints/auth.py expects.
      audience = "${local.function_base_url}/${each.value.function}"
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invoker]
}
