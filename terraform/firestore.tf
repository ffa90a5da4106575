locals {
  # Composite indexes for the queries that the services run, keyed by a
  # readable name. Firestore creates single-field indexes by itself.
  firestore_indexes = {
    outbox_status_not_before = {
      collection = "outbox"
      fields     = [["status", "ASCENDING"], ["not_before", "ASCENDING"]]
    }
    deals_status_stale_due_at = {
      collection = "deals"
      fields     = [["status", "ASCENDING"], ["stale_due_at", "ASCENDING"]]
    }
    tasks_owner_status_due_at = {
      collection = "tasks"
      fields     = [["owner_id", "ASCENDING"], ["status", "ASCENDING"], ["due_at", "ASCENDING"]]
    }
    activities_contact_occurred_at = {
      collection = "activities"
      fields     = [["contact_id", "ASCENDING"], ["occurred_at", "DESCENDING"]]
    }
    leads_source_created_at = {
      collection = "leads"
      fields     = [["source_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    followups_contact_status = {
      collection = "followups"
      fields     = [["contact_id", "ASCENDING"], ["status", "ASCENDING"]]
    }
  }
}

resource "google_firestore_database" "database" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.service]
}

resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.database.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# Documents in events are deleted once expires_at has passed. Firestore TTL
# deletes within about 24 hours of expiry, not at the exact time. Documents in
# audit have no TTL and are kept.
resource "google_firestore_field" "events_expires_at_ttl" {
  project    = var.project_id
  database   = google_firestore_database.database.name
  collection = "events"
  field      = "expires_at"

  ttl_config {}

  # An empty block turns off single-field indexes on the field, because an
  # indexed timestamp that only grows limits the write rate. Add an index here
  # if a query starts to filter on expires_at.
  index_config {}
}
