variable "alert_email" {
  description = "Email address that receives monitoring alerts. Null or an empty string creates no notification channel and no alert policies."
  type        = string
  default     = null
  validation {
    condition     = var.alert_email == null || var.alert_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "The alert_email variable must be null, an empty string or an email address such as ops@example.com."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database. It cannot be changed after the database is created."
  type        = string
  default     = "asia-east1"
  validation {
    condition     = contains(["asia-east1", "asia-east2", "asia-northeast1", "asia-southeast1", "nam5", "eur3", "us-central1", "europe-west1"], var.firestore_location)
    error_message = "The firestore_location variable must be one of: asia-east1, asia-east2, asia-northeast1, asia-southeast1, nam5, eur3, us-central1, europe-west1."
  }
}

variable "function_settings" {
  description = "Per-function overrides of the runtime settings, keyed by function name (for example intake_webhook). Functions not listed use the defaults."
  type = map(object({
    available_memory   = optional(string, "256Mi")
    timeout_seconds    = optional(number, 60)
    min_instance_count = optional(number, 0)
    max_instance_count = optional(number, 10)
  }))
  default  = {}
  nullable = false
  validation {
    condition = alltrue([
      for name in keys(var.function_settings) : contains(["intake_form", "intake_webhook", "dispatch_outbox", "followup", "gmail_push", "gmail_watch", "stale_deals", "sequence_tick", "unsubscribe"], name)
    ])
    error_message = "The function_settings keys must be among: intake_form, intake_webhook, dispatch_outbox, followup, gmail_push, gmail_watch, stale_deals, sequence_tick, unsubscribe."
  }
}

variable "function_source_object" {
  description = "Name of the zip object in the source bucket that every function deploys, for example function-source-1a2b3c4.zip. Cloud Build uploads it before it runs terraform apply."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+\\.zip$", var.function_source_object))
    error_message = "The function_source_object variable must be an object name ending in .zip, such as function-source-1a2b3c4.zip."
  }
}

variable "labels" {
  description = "Labels added to every resource that supports them."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "project_id" {
  description = "ID of the Google Cloud project that hosts the CRM."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id variable must be a project ID: 6 to 30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, Cloud Tasks queues and Cloud Scheduler jobs."
  type        = string
  default     = "asia-east1"
  validation {
    condition     = contains(["asia-east1", "asia-east2", "asia-northeast1", "asia-southeast1", "us-central1", "europe-west1"], var.region)
    error_message = "The region variable must be one of: asia-east1, asia-east2, asia-northeast1, asia-southeast1, us-central1, europe-west1."
  }
}

variable "source_ids" {
  description = "IDs of the webhook sources. Each ID gets a secret crm-source-<id>, exposed to the functions as CRM_SECRET_<ID>."
  type        = list(string)
  default     = ["google_forms", "webflow", "cf7", "gravityforms", "elementor", "typeform", "tally", "jotform", "hubspot", "html"]
  nullable    = false
  validation {
    condition     = alltrue([for id in var.source_ids : can(regex("^[a-z0-9_]+$", id))])
    error_message = "Each source_ids entry must match ^[a-z0-9_]+$ (lower-case letters, digits and underscores), for example google_forms."
  }
  validation {
    condition     = length(distinct(var.source_ids)) == length(var.source_ids)
    error_message = "The source_ids variable must not contain duplicates."
  }
}

variable "source_retention_days" {
  description = "Age in days after which a function source zip is deleted from the source bucket. Deployed functions keep running, because Cloud Functions builds its own image from the zip."
  type        = number
  default     = 90
  validation {
    condition     = var.source_retention_days >= 7
    error_message = "The source_retention_days variable must be at least 7."
  }
}

variable "time_zone" {
  description = "IANA time zone of the Cloud Scheduler jobs, for example Asia/Taipei."
  type        = string
  default     = "Asia/Taipei"
  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$", var.time_zone))
    error_message = "The time_zone variable must be an IANA time zone name such as Asia/Taipei or UTC."
  }
}
