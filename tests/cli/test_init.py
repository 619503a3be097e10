from typer.testing import CliRunner

from interlink.cli import app
from interlink.config import STARTER_CONFIG

runner = CliRunner()
UNSET = {"SHOP_URL": None, "SHOP_TOKEN": None, "INTERLINK_DATABASE_URL": None, "COLUMNS": "200"}


def test_init_writes_the_starter_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "interlink.yaml").read_text(encoding="utf-8") == STARTER_CONFIG
    assert "interlink check" in result.stdout


def test_init_then_check_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init"]).exit_code == 0

    result = runner.invoke(app, ["check"], env=UNSET)
    assert result.exit_code == 0, result.output
    assert "shop" in result.stdout
    assert "https://api.example.com/v1" in result.stdout

    env = {**UNSET, "SHOP_URL": "https://shop.test/v2", "SHOP_TOKEN": "t0k3n-value"}
    result = runner.invoke(app, ["check"], env=env)
    assert result.exit_code == 0, result.output
    assert "https://shop.test/v2" in result.stdout
    assert "t0k3n-value" not in result.stdout


def test_init_with_config_path_creates_directories(tmp_path):
    path = tmp_path / "deploy" / "prod.yaml"
    result = runner.invoke(app, ["init", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert path.is_file()
    assert runner.invoke(app, ["--config", str(path), "check"], env=UNSET).exit_code == 0


def test_init_refuses_to_overwrite(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text("connections: {}\n", encoding="utf-8")
    result = runner.invoke(app, ["init", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"{path}: already exists; pass --force to overwrite it\n"
    assert result.stdout == ""
    assert path.read_text(encoding="utf-8") == "connections: {}\n"


def test_init_force_overwrites(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text("connections: {}\n", encoding="utf-8")
    result = runner.invoke(app, ["init", "--config", str(path), "--force"])
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG


def test_init_global_config_option(tmp_path):
    path = tmp_path / "x.yaml"
    result = runner.invoke(app, ["--config", str(path), "init"])
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG


def test_init_into_a_directory_is_refused(tmp_path):
    result = runner.invoke(app, ["init", "--config", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path}: is a directory; give a file name with --config\n"
