"""RELIABILITY.md L1, the static checks: bandit finds nothing of medium severity or above in
src/ (`make lint` runs it too; what it skips is justified in pyproject.toml), and
detect-secrets finds no secret in the repository outside tests/ but the ones listed here,
each with why it is not one. tests/ is left out: its fixtures are fake credentials on
purpose (they prove that redaction works)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (file, detect-secrets' hash of what it found): why it is no secret. Line numbers are not
# kept: an edit above an entry does not make it new.
NOT_SECRETS = {
    ("benchmarks/push.py", "ef211bfb6209900464e07688cea11b39d87155f0"): (
        "the local sandbox provider's client secret, made up for the benchmark"
    ),
    ("benchmarks/webhooks.py", "a8d1d9e5c6f96014b2d6858b8d7070e32c082a47"): (
        "the name of an environment variable"
    ),
    ("benchmarks/webhooks.py", "0e61cfdd28a6a03b24a5daef1f657711d01baec6"): (
        "the benchmark's own signing key for its local receiver"
    ),
    ("docs/configuration.md", "1278013c5ebeca8779cfce52fe3957b4a84a52dc"): (
        "a list of the keys that hold secrets"
    ),
    ("docs/configuration.md", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"): (
        "postgresql://user:password@host/db, a placeholder"
    ),
    ("docs/sandbox.md", "53aa10c82189e9a5fa18cd17392561a176c78611"): (
        "the sandbox's example webhook secret"
    ),
    ("examples/connect-accounts/interlink.yaml", "54115ee388cdb6d86bb4bf5b2ea82dbb54508f65"): (
        "account_key: the name of a field in the provider's answer"
    ),
    ("src/interlink/cli/_render.py", "f3bbbd66a63d4bf1747940578ec3d0103530e21d"): (
        "a docstring's example of a masked URL"
    ),
    ("src/interlink/client/__init__.py", "63e094f0dcd599d2c38ca351aadc11b4988445a8"): (
        "a docstring's il_... placeholder"
    ),
    ("src/interlink/config/_messages.py", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"): (
        "a comment naming the user:password@host form"
    ),
    ("src/interlink/config/_oauth_presets.py", "ba2aab71df6db64c57346472c89eb6a0c2c4e42e"): (
        "account_key: the name of Stripe's field"
    ),
    ("src/interlink/config/_webhooks.py", "0e61cfdd28a6a03b24a5daef1f657711d01baec6"): (
        "a docstring naming the whsec_ prefix"
    ),
    ("src/interlink/http/_client.py", "9d4e1e23bd5b727046a9e3b4b7db57bd8d6ee684"): (
        "a docstring's https://user:pass@host example"
    ),
    ("src/interlink/http/_redact.py", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"): (
        "a comment naming the user:password@ form"
    ),
    ("src/interlink/http/_redact.py", "f3bbbd66a63d4bf1747940578ec3d0103530e21d"): (
        "a docstring's example of a masked URL"
    ),
    ("src/interlink/oauth/__init__.py", "b4a24f95ec1593fdba6bce7192a05623abc9c0a3"): (
        "the module an export comes from"
    ),
    ("src/interlink/oauth/__init__.py", "f446bdf53859eed83626548c2a086cfc2dacfb36"): (
        "the module an export comes from"
    ),
    ("src/interlink/oauth/_keys.py", "431ca30140e38a314037022bf9c57e91c72d0fc5"): (
        "the name of an environment variable"
    ),
    ("src/interlink/oauth/_token_source.py", "21df59a886f7477830ae07b63b312fa87910b4f3"): (
        "a docstring naming invalid_client"
    ),
    ("src/interlink/prefect/_job_tasks.py", "555174351950b8852310e94505e953c8025e9abb"): (
        "the name of an environment variable"
    ),
    ("src/interlink/sandbox/_webhook_signing.py", "ad22ab25709f3fd5771034e117e93acab8390192"): (
        "a docstring's example secret for the local sandbox"
    ),
    ("src/interlink/store/_apikeys.py", "a7afddb68260a60f86c02a021efba7f216c2e7cf"): (
        'the default scope, "read"'
    ),
}


def test_bandit_finds_nothing_of_medium_severity_or_above() -> None:
    found = subprocess.run(
        [sys.executable, "-m", "bandit", "--quiet", "--configfile", "pyproject.toml"]
        + ["--recursive", "src", "--severity-level", "medium"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert found.returncode == 0, found.stdout[-4000:] + found.stderr[-2000:]


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of the repository's files")
    names = listed.stdout.decode().split("\0")
    return [name for name in names if name and not name.startswith("tests/")]


def test_no_secret_in_the_repository_outside_tests_but_the_listed_ones() -> None:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection(root=str(ROOT))
    with default_settings():
        collection.scan_files(*_tracked_files())
    found = {(filename, secret.secret_hash): secret.line_number for filename, secret in collection}
    new = {f"{name}:{line}" for (name, digest), line in found.items()} - {
        f"{name}:{found[(name, digest)]}" for name, digest in NOT_SECRETS if (name, digest) in found
    }
    assert not new, f"secrets (or lookalikes to list in NOT_SECRETS, with why): {sorted(new)}"
    gone = set(NOT_SECRETS) - set(found)
    assert not gone, f"NOT_SECRETS lists what is no longer there: {sorted(gone)}"
