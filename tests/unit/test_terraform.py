"""Static checks of the Terraform configuration and cloudbuild.yaml.

Nothing here reaches Google Cloud: the .tf files are parsed with python-hcl2,
and terraform fmt and checkov run only when they are installed.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDBUILD_PATH = REPO_ROOT / "cloudbuild.yaml"

EXPECTED_FUNCTIONS = {
    "intake_form",
    "intake_webhook",
    "dispatch_outbox",
    "followup",
    "gmail_push",
    "gmail_watch",
    "stale_deals",
    "sequence_tick",
    "unsubscribe",
}
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
GMAIL_PUSH_MEMBER = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
EXPECTED_STEP_ORDER = ["test", "fmt", "package", "deploy"]


def _tf_files():
    return sorted(TERRAFORM_DIR.glob("*.tf"))


def _unquote(value):
    """Strip the quotes that python-hcl2 8 keeps around labels and string literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _normalize(value):
    """Unquote keys and literals and drop python-hcl2's __is_block__ markers."""
    if isinstance(value, dict):
        return {_unquote(key): _normalize(item) for key, item in value.items() if key != "__is_block__"}
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    return _unquote(value)


def _parse(path):
    with path.open(encoding="utf-8") as handle:
        return _normalize(hcl2.load(handle))


@pytest.fixture(scope="module")
def terraform():
    """Return every top-level block of every .tf file, merged by block type."""
    merged = {"resource": [], "variable": [], "output": [], "locals": [], "terraform": []}
    for path in _tf_files():
        for block_type, blocks in _parse(path).items():
            merged.setdefault(block_type, []).extend(blocks)
    return merged


def _resources(terraform, resource_type):
    """Return {name: body} for every resource of one type."""
    found = {}
    for block in terraform["resource"]:
        for type_name, by_name in block.items():
            if type_name == resource_type:
                for name, body in by_name.items():
                    found[name] = body
    return found


def _local(terraform, name):
    for block in terraform["locals"]:
        if name in block:
            return block[name]
    raise KeyError(f"local {name!r} not found in {TERRAFORM_DIR}")


def _first(value):
    """Return the single element of a nested block or a dynamic block list."""
    return value[0] if isinstance(value, list) else value


def _iam_role_bindings(terraform):
    """Yield (resource address, role expression) for every IAM member or binding."""
    for block in terraform["resource"]:
        for type_name, by_name in block.items():
            if not re.search(r"_iam_(member|binding)$", type_name):
                continue
            for name, body in by_name.items():
                yield f"{type_name}.{name}", str(body.get("role"))


def test_tf_files_exist():
    names = {path.name for path in _tf_files()}

    for required in ("main.tf", "serviceaccount.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert required in names, f"terraform/{required} is missing"


@pytest.mark.parametrize("path", _tf_files(), ids=lambda path: path.name)
def test_tf_file_parses(path):
    parsed = _parse(path)

    assert parsed, f"{path.name} parsed to nothing"


def test_terraform_fmt_clean():
    terraform_bin = shutil.which("terraform")
    if terraform_bin is None:
        pytest.skip("terraform binary not on PATH")

    result = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", "terraform"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}{result.stderr}"


def test_providers_pinned(terraform):
    settings = _first(terraform["terraform"])
    providers = _first(settings["required_providers"])

    assert "required_version" in settings
    assert set(providers) >= {"google", "google-beta"}
    for name in ("google", "google-beta"):
        assert "version" in providers[name], f"provider {name} has no version constraint"


def test_functions_declared(terraform):
    functions = _local(terraform, "functions")

    assert set(functions) == EXPECTED_FUNCTIONS
    for name, settings in functions.items():
        assert settings["entry_point"] == name


def test_function_build_config(terraform):
    function = _resources(terraform, "google_cloudfunctions2_function")["function"]
    build = _first(function["build_config"])

    assert function["for_each"] == "${local.functions}"
    assert build["runtime"] == "python312"
    assert build["entry_point"] == "${each.value.entry_point}"


def test_function_environment(terraform):
    environment = _local(terraform, "environment_variables")

    for key in (
        "GOOGLE_CLOUD_PROJECT",
        "CRM_CONFIG",
        "CRM_TASKS_LOCATION",
        "CRM_FOLLOWUP_QUEUE",
        "CRM_FUNCTION_BASE_URL",
        "CRM_TASKS_SERVICE_ACCOUNT",
        "CRM_MAIL_ADAPTER",
        "CRM_INVOKER_EMAILS",
    ):
        assert key in environment, f"environment variable {key} is not set"
    assert environment["CRM_CONFIG"] == "config/crm.yaml"
    assert environment["CRM_MAIL_ADAPTER"] == "gmail"


def test_gmail_push_event_trigger(terraform):
    functions = _local(terraform, "functions")
    function = _resources(terraform, "google_cloudfunctions2_function")["function"]
    trigger = next(block["event_trigger"] for block in function["dynamic"] if "event_trigger" in block)
    content = _first(trigger["content"])

    assert [name for name, settings in functions.items() if settings["pubsub_trigger"]] == ["gmail_push"]
    assert "google_pubsub_topic.gmail_push.id" in trigger["for_each"]
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    assert content["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"


def test_variables_described_and_typed(terraform):
    for block in terraform["variable"]:
        for name, body in block.items():
            assert body.get("description"), f"variable {name} has no description"
            assert "type" in body, f"variable {name} has no type"


def test_variable_attribute_order(terraform):
    for path in _tf_files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r'variable "(\w+)" \{\n(.*?)\n\}', text, re.S):
            keys = re.findall(r"^  (description|type|default)\b", match.group(2), re.M)
            expected = [key for key in ("description", "type", "default") if key in keys]
            assert keys == expected, f"variable {match.group(1)} orders its attributes as {keys}"


def test_outputs_described(terraform):
    assert terraform["output"], "no outputs declared"
    for block in terraform["output"]:
        for name, body in block.items():
            assert body.get("description"), f"output {name} has no description"


def test_source_ids_default_and_validation(terraform):
    source_ids = next(block["source_ids"] for block in terraform["variable"] if "source_ids" in block)
    conditions = [_first(rule)["condition"] for rule in source_ids["validation"]]

    assert "google_forms" in source_ids["default"]
    assert any("^[a-z0-9_]+$" in condition for condition in conditions)


def test_no_primitive_roles(terraform):
    bindings = list(_iam_role_bindings(terraform))

    assert bindings, "no IAM bindings found"
    for address, role in bindings:
        assert role not in PRIMITIVE_ROLES, f"{address} grants {role}"
    for path in _tf_files():
        text = path.read_text(encoding="utf-8")
        for role in PRIMITIVE_ROLES:
            assert f'"{role}"' not in text, f"{path.name} names {role}"


def test_gmail_push_publisher(terraform):
    bindings = _resources(terraform, "google_pubsub_topic_iam_member")
    publishers = [
        body
        for body in bindings.values()
        if body["member"] == GMAIL_PUSH_MEMBER
    ]

    assert len(publishers) == 1, f"expected one binding for {GMAIL_PUSH_MEMBER}, found {len(publishers)}"
    assert publishers[0]["role"] == "roles/pubsub.publisher"
    assert publishers[0]["topic"] == "${google_pubsub_topic.gmail_push.name}"


def test_gmail_push_topic_name(terraform):
    topic = _resources(terraform, "google_pubsub_topic")["gmail_push"]

    assert topic["name"] == "crm-gmail-push"


def test_followup_queue_limits(terraform):
    queue = _resources(terraform, "google_cloud_tasks_queue")["followups"]
    retry = _first(queue["retry_config"])
    rate = _first(queue["rate_limits"])

    assert queue["name"] == "crm-followups"
    assert retry["max_attempts"] == 20
    assert retry["min_backoff"] == "10s"
    assert retry["max_backoff"] == "3600s"
    assert retry["max_doublings"] == 5
    assert rate["max_dispatches_per_second"] == 20
    assert rate["max_concurrent_dispatches"] == 50


def test_firestore_database_protected(terraform):
    database = _resources(terraform, "google_firestore_database")["database"]

    assert database["type"] == "FIRESTORE_NATIVE"
    assert database["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    assert database["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"


def test_firestore_indexes(terraform):
    indexes = _local(terraform, "firestore_indexes")
    by_collection = {
        index["collection"]: [[part for part in field] for field in index["fields"]]
        for index in indexes.values()
    }

    assert by_collection["outbox"] == [["status", "ASCENDING"], ["not_before", "ASCENDING"]]
    assert by_collection["activities"] == [["contact_id", "ASCENDING"], ["occurred_at", "DESCENDING"]]
    assert set(by_collection) == {"outbox", "deals", "tasks", "activities", "leads", "followups"}


def test_scheduler_jobs_use_oidc(terraform):
    job = _resources(terraform, "google_cloud_scheduler_job")["job"]
    target = _first(job["http_target"])
    schedules = {name: spec["schedule"] for name, spec in _local(terraform, "scheduler_jobs").items()}

    assert job["time_zone"] == "${var.time_zone}"
    assert _first(target["oidc_token"])["audience"] == "${local.function_base_url}/${each.value.function}"
    assert "retry_config" in job
    assert schedules == {
        "dispatch-outbox": "* * * * *",
        "gmail-watch": "0 6 * * *",
        "sequence-tick": "*/5 * * * *",
        "stale-deals": "30 8 * * *",
    }


def test_source_bucket_hardened(terraform):
    bucket = _resources(terraform, "google_storage_bucket")["function_source"]

    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert _first(bucket["versioning"])["enabled"] is True
    assert bucket.get("lifecycle_rule"), "source bucket has no lifecycle rule"


def _checkov_command():
    """Return the checkov command line, or None when checkov is not installed."""
    executable = shutil.which("checkov")
    if executable is None:
        # checkov pins packages that conflict with the project venv, so it may
        # live in its own venv next to it.
        candidate = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
        executable = str(candidate) if candidate.exists() else None
    if executable is None:
        return None
    return [executable, "-d", "terraform", "--framework", "terraform", "--quiet", "--compact", "-o", "json", "--skip-download"]


def test_checkov_no_failed_checks():
    command = _checkov_command()
    if command is None:
        pytest.skip("checkov is not installed (pip install checkov==3.3.30 into .venv-checkov)")

    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['resource']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    parsing_errors = sum(report["summary"]["parsing_errors"] for report in reports)

    assert failed == [], f"checkov failed checks: {failed}"
    assert parsing_errors == 0
    assert sum(report["summary"]["passed"] for report in reports) > 0


def test_cloudbuild_parses():
    config = yaml.safe_load(CLOUDBUILD_PATH.read_text(encoding="utf-8"))

    assert config["serviceAccount"].endswith("/crm-deployer@$PROJECT_ID.iam.gserviceaccount.com")
    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_cloudbuild_step_order():
    config = yaml.safe_load(CLOUDBUILD_PATH.read_text(encoding="utf-8"))
    step_ids = [step.get("id") for step in config["steps"]]

    positions = [step_ids.index(step_id) for step_id in EXPECTED_STEP_ORDER if step_id in step_ids]
    assert [step_ids[position] for position in positions] == EXPECTED_STEP_ORDER, f"steps are {step_ids}"
    assert positions == sorted(positions), f"steps are {step_ids}"


def test_cloudbuild_step_commands():
    steps = {step["id"]: step for step in yaml.safe_load(CLOUDBUILD_PATH.read_text(encoding="utf-8"))["steps"]}

    def script(step_id):
        return " ".join(str(arg) for arg in steps[step_id].get("args", []))

    assert "python -m pytest tests/unit -q" in script("test")
    assert script("fmt") == "fmt -check -recursive terraform"
    assert "cp functions/main.py build/source/main.py" in script("package")
    assert "function-source-$SHORT_SHA.zip" in script("package")
    assert "${_SOURCE_BUCKET}" in script("upload")
    assert "-backend-config=bucket=${_TF_STATE_BUCKET}" in script("deploy")
    assert "-var function_source_object=function-source-$SHORT_SHA.zip" in script("deploy")
