locals {
  # Project roles of the functions' runtime service account. Everything else it
  # needs is granted on the single resource below.
  functions_project_roles = [
    "roles/datastore.user",
    "roles/logging.logWriter",
  ]

  # Project roles that Cloud Functions builds need when they run as a
  # dedicated service account instead of the default compute account.
  function_builder_project_roles = [
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
  ]

  # Project roles that terraform apply in Cloud Build needs to manage every
  # resource in this configuration.
  deployer_project_roles = [
    "roles/browser",
    "roles/cloudfunctions.developer",
    "roles/cloudscheduler.admin",
    "roles/cloudtasks.admin",
    "roles/datastore.owner",
    "roles/eventarc.developer",
    "roles/logging.logWriter",
    "roles/monitoring.alertPolicyEditor",
    "roles/monitoring.notificationChannelEditor",
    "roles/pubsub.admin",
    "roles/run.admin",
    "roles/secretmanager.admin",
    "roles/serviceusage.serviceUsageAdmin",
  ]

  # The deployer may grant only these roles at project level. Its own roles
  # are left out, so a change to them needs an apply by a project owner.
  deployer_grantable_roles = distinct(concat(local.functions_project_roles, local.function_builder_project_roles))

  # Service accounts that the deployer attaches to functions, builds and
  # Scheduler jobs, which needs iam.serviceAccounts.actAs on each.
  deployer_act_as = {
    functions         = google_service_account.functions.name
    function_builder  = google_service_account.function_builder.name
    push_invoker      = google_service_account.push_invoker.name
    scheduler_invoker = google_service_account.scheduler_invoker.name
  }
}

# Functions runtime.

resource "google_service_account" "functions" {
  project      = var.project_id
  account_id   = "crm-functions"
  display_name = "CRM functions runtime"
}

resource "google_project_iam_member" "functions" {
  for_each = toset(local.functions_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.functions.member
}

resource "google_cloud_tasks_queue_iam_member" "functions_enqueuer" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.followups.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.functions.member
}

resource "google_secret_manager_secret_iam_member" "functions_accessor" {
  for_each = google_secret_manager_secret.secret

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.functions.member
}

# Cloud Tasks mints the OIDC token of a task as the service account named in
# the task, and the enqueuer needs actAs on that account.
resource "google_service_account_iam_member" "functions_act_as_tasks_invoker" {
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.functions.member
}

# Domain-wide delegation without a key file: the runtime signs a JWT as the
# delegate account through the IAM Credentials API, and that needs
# iam.serviceAccounts.signJwt on the delegate.
resource "google_service_account_iam_member" "functions_sign_as_gmail_delegate" {
  service_account_id = google_service_account.gmail_delegate.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.functions.member
}

# Cloud Functions builds.

resource "google_service_account" "function_builder" {
  project      = var.project_id
  account_id   = "crm-function-builder"
  display_name = "CRM Cloud Functions builds"
}

resource "google_project_iam_member" "function_builder" {
  for_each = toset(local.function_builder_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.function_builder.member
}

resource "google_storage_bucket_iam_member" "function_builder_source_reader" {
  bucket = google_storage_bucket.function_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.function_builder.member
}

# Cloud Tasks invoker of followup.

resource "google_service_account" "tasks_invoker" {
  project      = var.project_id
  account_id   = "crm-tasks-invoker"
  display_name = "CRM Cloud Tasks invoker"
}

resource "google_cloud_run_service_iam_member" "tasks_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["followup"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.tasks_invoker.member
}

# Cloud Scheduler invoker of the periodic functions.

resource "google_service_account" "scheduler_invoker" {
  project      = var.project_id
  account_id   = "crm-scheduler-invoker"
  display_name = "CRM Cloud Scheduler invoker"
}

resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  for_each = toset([for job in values(local.scheduler_jobs) : job.function])

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler_invoker.member
}

# Eventarc invoker of gmail_push.

resource "google_service_account" "push_invoker" {
  project      = var.project_id
  account_id   = "crm-push-invoker"
  display_name = "CRM Eventarc invoker of gmail_push"
}

resource "google_cloud_run_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["gmail_push"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push_invoker.member
}

# The Pub/Sub service agent signs the OIDC token of each push delivery as the
# trigger's service account.
resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Gmail and Calendar domain-wide delegation. This account has no roles: a
# Workspace super admin authorises its client ID (the unique_id output) for
# the Gmail and Calendar scopes in the Admin console.

resource "google_service_account" "gmail_delegate" {
  project      = var.project_id
  account_id   = "crm-gmail-delegate"
  display_name = "CRM Gmail and Calendar delegate"
  description  = "Domain-wide delegation for gmail.modify, gmail.send and calendar.readonly. Has no IAM roles."
}

# Cloud Build deployer.

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "crm-deployer"
  display_name = "CRM Cloud Build deployer"
}

resource "google_project_iam_member" "deployer" {
  for_each = toset(local.deployer_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

# The deployer creates the CRM service accounts and sets their IAM policies.
# NOTE: This role also lets the deployer grant itself actAs on any service
# account in the project, so keep accounts with broad roles, such as the
# default compute account with Editor, out of this project or strip their roles.
resource "google_project_iam_member" "deployer_service_account_admin" {
  project = var.project_id
  role    = "roles/iam.serviceAccountAdmin"
  member  = google_service_account.deployer.member

  #checkov:skip=CKV_GCP_49: terraform apply creates the CRM service accounts and sets their IAM policies, which needs roles/iam.serviceAccountAdmin. No CRM workload runs as the deployer.
}

# projectIamAdmin is limited by an IAM condition to granting the runtime and
# build roles above, so the deployer cannot grant other project roles.
resource "google_project_iam_member" "deployer_delegated_grants" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deployer.member

  condition {
    title       = "crm_delegated_grants"
    description = "Grant only the CRM runtime and build roles."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${join(", ", [for role in local.deployer_grantable_roles : "'${role}'"])}])"
  }
}

resource "google_service_account_iam_member" "deployer_act_as" {
  for_each = local.deployer_act_as

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# Terraform manages the source bucket and Cloud Build uploads zips to it.
resource "google_storage_bucket_iam_member" "deployer_source_admin" {
  bucket = google_storage_bucket.function_source.name
  role   = "roles/storage.admin"
  member = google_service_account.deployer.member
}
