resource "google_storage_bucket" "function_source" {
  project                     = var.project_id
  name                        = "${var.project_id}-crm-function-source"
  location                    = var.region
  labels                      = local.labels
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Deployed functions keep running after their zip is deleted, because Cloud
  # Functions builds a container image from the zip at deploy time.
  lifecycle_rule {
    condition {
      age            = var.source_retention_days
      matches_prefix = ["function-source-"]
    }
    action {
      type = "Delete"
    }
  }

  # Versioning keeps overwritten zips, so noncurrent versions expire too.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  #checkov:skip=CKV_GCP_62: The bucket holds only the source zips that Cloud Build uploads, and Admin Activity audit logs already record changes to it.
}
