"""Regenerate the typed Python client in ``clients/python`` from icehook's API description.

    python clients/generate.py          # rewrite clients/python/icehook_client
    python clients/generate.py --check  # exit 1 if the committed client is not current

The description is the one ``icehook serve`` answers at ``/openapi.json``, made from the
routes without starting anything (``app.http.openapi.document``). The client is
``openapi-python-client``'s output (the version pinned in pyproject.toml's dev extra), so
regenerating with the same version gives the same files; CI runs ``--check``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from app.http import openapi
from app.settings import Settings
from app.wiring import create_app

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "python"
PACKAGE = "icehook_client"
CONFIG = HERE / "openapi-python-client.yaml"


def description() -> dict[str, object]:
    """``/openapi.json`` as ``serve`` answers it (the app is built, not started)."""
    settings = Settings.from_env(
        {
            "ICEHOOK_DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
            "ICEHOOK_API_KEYS": "unused-api-key-0123456789",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "unused",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "unused",
        }
    )
    return openapi.document(create_app(settings).routes)


def generate(into: Path) -> Path:
    """Generate the client package under ``into``; returns the package's directory."""
    spec = into / "openapi.json"
    spec.write_text(json.dumps(description(), indent=2, sort_keys=True) + "\n")
    subprocess.run(  # noqa: S603 (fixed program, no shell)
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(CONFIG),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
            "--overwrite",
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(spec, into / PACKAGE / "openapi.json")  # what it was generated from
    shutil.rmtree(into / PACKAGE / ".ruff_cache", ignore_errors=True)  # the post hooks' cache
    return into / PACKAGE


def differences(left: Path, right: Path) -> list[str]:
    """Files that differ between two trees, or are in only one."""
    compared = filecmp.dircmp(left, right, ignore=["__pycache__", ".ruff_cache"])
    found = [*compared.left_only, *compared.right_only, *compared.diff_files]
    for name in compared.common_dirs:
        found += [f"{name}/{path}" for path in differences(left / name, right / name)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python clients/generate.py", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the client is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        fresh = generate(Path(scratch))
        target = CLIENT / PACKAGE
        if args.check:
            stale = differences(fresh, target) if target.exists() else [str(target)]
            if stale:
                print(
                    "clients/python is not current with the API description "
                    f"({', '.join(sorted(stale)[:5])}): run python clients/generate.py",
                    file=sys.stderr,
                )
                sys.exit(1)
            print("clients/python is current")
            return
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(fresh, target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
