output "dead_letter_topic_id" {
  description = "ID of the dead-letter topic for Gmail push notifications that gmail_push could not process."
  value       = google_pubsub_topic.gmail_push_dead_letter.id
}

output "firestore_database" {
  description = "Name of the Firestore database."
  value       = google_firestore_database.database.name
}

output "function_base_url" {
  description = "Base URL that the functions receive as CRM_FUNCTION_BASE_URL; a function is served at <base>/<function name>."
  value       = local.function_base_url
}

output "function_source_bucket" {
  description = "Bucket that receives the function source zips; pass it to Cloud Build as _SOURCE_BUCKET."
  value       = google_storage_bucket.function_source.name
}

output "function_urls" {
  description = "URL of each function, keyed by function name. Webhooks are posted to <intake_webhook URL>/<source_id>."
  value       = { for name, function in google_cloudfunctions2_function.function : name => function.url }
}

output "gmail_delegate" {
  description = "Values to enter in the Google Workspace Admin console under Security > Access and data control > API controls > Manage domain-wide delegation: the client ID of crm-gmail-delegate and the comma-separated OAuth scopes to authorise."
  value = {
    client_id = google_service_account.gmail_delegate.unique_id
    email     = google_service_account.gmail_delegate.email
    scopes = join(",", [
      "https://www.googleapis.com/auth/gmail.modify",
      "https://www.googleapis.com/auth/gmail.send",
      "https://www.googleapis.com/auth/calendar.readonly",
    ])
  }
}

output "gmail_push_topic_id" {
  description = "ID of the topic that Gmail users.watch publishes to, in the projects/<project>/topics/crm-gmail-push form that the watch request expects."
  value       = google_pubsub_topic.gmail_push.id
}

output "queue_ids" {
  description = "IDs of the Cloud Tasks queues, keyed by role (followups, outbox)."
  value = {
    followups = google_cloud_tasks_queue.followups.id
    outbox    = google_cloud_tasks_queue.outbox.id
  }
}

output "secret_ids" {
  description = "Secret Manager secret IDs, keyed to the environment variable that exposes each one to the functions. Add a version to each before the functions are deployed."
  value       = { for secret_id, env in local.secrets : env => google_secret_manager_secret.secret[secret_id].secret_id }
}

output "service_account_emails" {
  description = "Emails of the CRM service accounts, keyed by role."
  value = {
    deployer          = google_service_account.deployer.email
    function_builder  = google_service_account.function_builder.email
    functions         = google_service_account.functions.email
    gmail_delegate    = google_service_account.gmail_delegate.email
    push_invoker      = google_service_account.push_invoker.email
    scheduler_invoker = google_service_account.scheduler_invoker.email
    tasks_invoker     = google_service_account.tasks_invoker.email
  }
}
