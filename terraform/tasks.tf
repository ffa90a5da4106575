resource "google_cloud_tasks_queue" "followups" {
  project  = var.project_id
  location = var.region
  name     = "crm-followups"

  rate_limits {
    max_dispatches_per_second = 20
    max_concurrent_dispatches = 50
  }

  retry_config {
    max_attempts  = 20
    min_backoff   = "10s"
    max_backoff   = "3600s"
    max_doublings = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.service]
}

# Created now so the outbox can move from the scheduled dispatcher to per-message
# tasks without a second infrastructure change. No code enqueues to it yet.
resource "google_cloud_tasks_queue" "outbox" {
  project  = var.project_id
  location = var.region
  name     = "crm-outbox"

  rate_limits {
    max_dispatches_per_second = 10
    max_concurrent_dispatches = 20
  }

  retry_config {
    max_attempts  = 20
    min_backoff   = "10s"
    max_backoff   = "3600s"
    max_doublings = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.service]
}
