locals {
  # Gen 2 functions are also served on the Cloud Functions domain, so this URL
  # is known before the functions exist and can be passed to them without a
  # dependency cycle. Tasks and links are built as <base>/<function name>.
  function_base_url = "https://${var.region}-${var.project_id}.cloudfunctions.net"

  # Every function deploys from the same zip, whose root contains main.py,
  # lib/, config/crm.yaml and requirements.txt. Public functions authenticate
  # each request in code (HMAC signature or signed token), so they allow
  # allUsers. gmail_push is the only function triggered by Pub/Sub.
  functions = {
    intake_form     = { entry_point = "intake_form", public = true, pubsub_trigger = false }
    intake_webhook  = { entry_point = "intake_webhook", public = true, pubsub_trigger = false }
    dispatch_outbox = { entry_point = "dispatch_outbox", public = false, pubsub_trigger = false }
    followup        = { entry_point = "followup", public = false, pubsub_trigger = false }
    gmail_push      = { entry_point = "gmail_push", public = false, pubsub_trigger = true }
    gmail_watch     = { entry_point = "gmail_watch", public = false, pubsub_trigger = false }
    stale_deals     = { entry_point = "stale_deals", public = false, pubsub_trigger = false }
    sequence_tick   = { entry_point = "sequence_tick", public = false, pubsub_trigger = false }
    unsubscribe     = { entry_point = "unsubscribe", public = true, pubsub_trigger = false }
  }
  public_functions = toset([for name, function in local.functions : name if function.public])

  environment_variables = {
    GOOGLE_CLOUD_PROJECT         = var.project_id
    CRM_CONFIG                   = "config/crm.yaml"
    CRM_TASKS_LOCATION           = var.region
    CRM_FOLLOWUP_QUEUE           = google_cloud_tasks_queue.followups.name
    CRM_FUNCTION_BASE_URL        = local.function_base_url
    CRM_TASKS_SERVICE_ACCOUNT    = google_service_account.tasks_invoker.email
    CRM_MAIL_ADAPTER             = "gmail"
    CRM_DELEGATE_SERVICE_ACCOUNT = google_service_account.gmail_delegate.email
    CRM_PUBLIC_BASE_URL          = local.function_base_url
    # The private functions also check the OIDC token in code, and accept
    # only these callers with the audience <CRM_FUNCTION_BASE_URL>/<name>.
    CRM_INVOKER_EMAILS = join(",", [
      google_service_account.scheduler_invoker.email,
      google_service_account.tasks_invoker.email,
      google_service_account.push_invoker.email,
    ])
  }

  labels = merge(var.labels, { app = "crm" })

  # Google APIs that the functions call or that the resources below need.
  services = [
    "artifactregistry.googleapis.com",
    "calendar-json.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "drive.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "gmail.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "sheets.googleapis.com",
  ]
}

data "google_project" "project" {
  project_id = var.project_id
}

resource "google_project_service" "service" {
  for_each = toset(local.services)

  project = var.project_id
  service = each.value

  # Destroying this configuration must not turn off APIs that other workloads
  # in the project may use.
  disable_on_destroy = false
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = each.key
  description = "CRM function ${each.key}."
  labels      = local.labels

  build_config {
    runtime         = "python312"
    entry_point     = each.value.entry_point
    service_account = google_service_account.function_builder.id
    source {
      storage_source {
        bucket = google_storage_bucket.function_source.name
        object = var.function_source_object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.functions.email
    available_memory                 = try(var.function_settings[each.key].available_memory, "256Mi")
    timeout_seconds                  = try(var.function_settings[each.key].timeout_seconds, 60)
    min_instance_count               = try(var.function_settings[each.key].min_instance_count, 0)
    max_instance_count               = try(var.function_settings[each.key].max_instance_count, 10)
    all_traffic_on_latest_revision   = true
    ingress_settings                 = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    environment_variables            = local.environment_variables
    max_instance_request_concurrency = 1

    # NOTE: Every function gets every secret because all of them share one
    # runtime service account, which can read every secret anyway.
    dynamic "secret_environment_variables" {
      for_each = local.secrets
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.key].secret_id
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.pubsub_trigger ? [google_pubsub_topic.gmail_push.id] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.push_invoker.email
    }
  }

  depends_on = [
    google_project_service.service,
    google_secret_manager_secret_iam_member.functions_accessor,
    google_project_iam_member.function_builder,
  ]
}

# Gen 2 functions are Cloud Run services, so invokers get roles/run.invoker on
# the service. Cloud Run needs no identity token for these functions because
# each request is authenticated in code: intake_form and intake_webhook check an HMAC
# signature and unsubscribe checks a signed token.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"

  #checkov:skip=CKV_GCP_102: intake_form, intake_webhook and unsubscribe are called by form providers and email recipients without Google credentials, and each request is authenticated in code.
}
