"""The real functions under functions-framework, against the emulators, on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from google.cloud import firestore

from lib.adapters.cloud_tasks import write_local_oidc_key
from lib.adapters.oidc import LocalOidcSigner
from lib.config.loader import load_config
from lib.devstack.emulators import REPO_ROOT, FunctionsServer, reset_firestore
from tests.conftest import TEST_LOCATION, TEST_PROJECT

INVOKER = "tests-invoker@demo-crm-test.iam.gserviceaccount.com"


def source_secret(source_id: str) -> bytes:
    # The fixtures sign with this test secret; every local source uses it here.
    return b"test-webhook-secret-DO-NOT-USE"


class _Server(FunctionsServer):
    def _child_env(self) -> dict[str, str]:
        env = super()._child_env()
        env.setdefault("CRM_FUNCTION_BASE_URL", self.url)
        return env


UNSUBSCRIBE_KEY = "test-unsubscribe-key-DO-NOT-USE"


def local_key_file(signer: LocalOidcSigner, folder: Path) -> Path:
    """Write the signer's key where CRM_LOCAL_OIDC_KEY_FILE points, so emulated tasks carry its tokens."""
    # NOTE: LocalOidcSigner has no public export of its key; local test runs only.
    pem = signer._private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode("ascii")
    path = folder / "local-oidc-key.json"
    write_local_oidc_key(path, pem, signer.kid, signer.issuer)
    return path


@pytest.fixture(scope="session")
def oidc_signer() -> LocalOidcSigner:
    return LocalOidcSigner()


@pytest.fixture(scope="session")
def functions_url(firestore_emulator: str, tasks_emulator, tmp_path_factory, oidc_signer) -> Iterator[str]:
    """Serve every function through the dev router; yield its base URL."""
    work = tmp_path_factory.mktemp("functions")
    certs = work / "certs.json"
    certs.write_text(json.dumps(oidc_signer.certs()), encoding="utf-8")
    key_file = local_key_file(oidc_signer, work)
    env = {
        "FIRESTORE_EMULATOR_HOST": firestore_emulator,
        "CLOUD_TASKS_EMULATOR_HOST": tasks_emulator.host,
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "CRM_TASKS_LOCATION": TEST_LOCATION,
        "CRM_MAIL_ADAPTER": "file",
        "CRM_OUTBOX_DIR": str(work / "outbox"),
        "CRM_INVOKER_EMAILS": INVOKER,
        "CRM_TASKS_SERVICE_ACCOUNT": INVOKER,
        "CRM_OIDC_CERTS_FILE": str(certs),
        "CRM_LOCAL_OIDC_KEY_FILE": str(key_file),
        "CRM_UNSUBSCRIBE_KEY": UNSUBSCRIBE_KEY,
    }
    for source in load_config().sources:
        env[source.secret_env] = source_secret(source.id).decode()
    with _Server(REPO_ROOT / "functions" / "main.py", "local_router", env, log_dir=work / "logs") as server:
        yield server.url


@pytest.fixture
def store(functions_url: str, firestore_emulator: str) -> firestore.Client:
    """A Firestore client on an emptied emulator."""
    reset_firestore(firestore_emulator, TEST_PROJECT)
    return firestore.Client(project=TEST_PROJECT)


def count(client: firestore.Client, collection: str) -> int:
    return sum(1 for _ in client.collection(collection).stream())


def fixture_path(shared: Path, name: str) -> Path:
    return shared / "fixtures" / "inputs" / name
