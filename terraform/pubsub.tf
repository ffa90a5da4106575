# Gmail publishes mailbox change notifications here after users.watch. The
# subscription that delivers them to gmail_push is created by Eventarc through
# the function's event trigger.
resource "google_pubsub_topic" "gmail_push" {
  project                    = var.project_id
  name                       = "crm-gmail-push"
  labels                     = local.labels
  message_retention_duration = "86400s"

  #checkov:skip=CKV_GCP_83: Messages carry only a mailbox address and a Gmail history ID, so Google-managed encryption is enough and a customer-managed key would add a KMS dependency.

  depends_on = [google_project_service.service]
}

# Gmail push notifications are published by this Google-owned service account,
# which must be a publisher on the topic.
resource "google_pubsub_topic_iam_member" "gmail_push_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.gmail_push.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
}

resource "google_pubsub_topic" "gmail_push_dead_letter" {
  project = var.project_id
  name    = "crm-gmail-push-dead-letter"
  labels  = local.labels

  #checkov:skip=CKV_GCP_83: Dead-lettered messages are the same Gmail notifications as on crm-gmail-push, which carry no message content.

  depends_on = [google_project_service.service]
}

# Keeps dead-lettered notifications for a week so they can be inspected or
# replayed; a topic without a subscription would drop them.
resource "google_pubsub_subscription" "gmail_push_dead_letter" {
  project                    = var.project_id
  name                       = "crm-gmail-push-dead-letter"
  topic                      = google_pubsub_topic.gmail_push_dead_letter.id
  labels                     = local.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages to the
# dead-letter topic.
# NOTE: The dead-letter policy itself must be set on the Eventarc-managed
# subscription with gcloud after the first apply, because Terraform does not
# manage that subscription. The deploy guide lists the commands.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.gmail_push_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
