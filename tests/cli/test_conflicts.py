"""`interlink run` into an API with `conflict: manual`, then `interlink conflicts ...`."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_sandbox_app

CONFIG = """
database: sqlite:///{db}
connections:
  shop:
    base_url: {url}/shop
    auth: {{type: bearer, token: sandbox-token}}
  commerce:
    base_url: {url}/commerce
    auth:
      type: oauth2_client_credentials
      token_url: oauth2-token
      client_id: commerce-client
      client_secret: commerce-secret
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 100}}
  commerce:
    customers:
      path: /api/customers
      format: jsonapi
      paginate: {{type: next_url, next_path: links.next}}
pipelines:
  to_commerce:
    source: shop.customers
    destination: commerce.customers
    fields: {{email: email, company: company, first_name: first_name}}
    match: email
    conflict: manual
"""


def test_conflicts_list_show_resolve(tmp_path):
    app_ = create_sandbox_app(records=30, commerce_records=10, commerce_overlap=3)
    runner = CliRunner()
    with SandboxServer(app_) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(CONFIG.format(db=tmp_path / "state.db", url=server.url))
        first = runner.invoke(app, ["run", "to_commerce", "-c", str(config)])
        assert first.exit_code == 0, first.output
        listed = runner.invoke(app, ["conflicts", "list", "-c", str(config)], terminal_width=200)
        assert listed.exit_code == 0
        assert listed.output.count("to_commerce") == 3
        shown = runner.invoke(app, ["conflicts", "show", "1", "-c", str(config)])
        assert shown.exit_code == 0 and "--take source|target" in shown.output

        # Make the source side differ, then take it.
        httpx.patch(
            f"{server.url}/shop/customers/1",
            json={"company": "Taken From Shop"},
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()
        bad = runner.invoke(app, ["conflicts", "resolve", "1", "--take", "both", "-c", str(config)])
        assert bad.exit_code == 2 and "expected source or target" in bad.output
        took = runner.invoke(
            app, ["conflicts", "resolve", "1", "--take", "source", "-c", str(config)]
        )
        assert took.exit_code == 0, took.output
        kept = runner.invoke(
            app, ["conflicts", "resolve", "2", "--take", "target", "-c", str(config)]
        )
        assert kept.exit_code == 0, kept.output
        again = runner.invoke(
            app, ["conflicts", "resolve", "2", "--take", "target", "-c", str(config)]
        )
        assert again.exit_code == 2 and "already resolved" in again.output

        second = runner.invoke(app, ["run", "to_commerce", "-c", str(config)])
        assert second.exit_code == 0, second.output
        still_open = runner.invoke(
            app, ["conflicts", "list", "-c", str(config)], terminal_width=200
        )
        assert still_open.output.count("to_commerce") == 1
        missing = runner.invoke(app, ["conflicts", "show", "99", "-c", str(config)])
        assert missing.exit_code == 2
