"""The commented `interlink.yaml` that `interlink init` writes.

It validates as written: every secret comes from `${VAR:-default}`, so `interlink check`
passes before any variable is set, and setting the variables makes it real.
"""

from __future__ import annotations

__all__ = ["STARTER_CONFIG"]

STARTER_CONFIG = """\
# interlink.yaml: the systems interlink talks to, what to read there, and where it goes.
# Validate it with `interlink check`; look at records with `interlink read shop.customers
# --limit 5`; copy them into SQLite with `interlink run customers`.
# `interlink init --from URL --force` writes this file from a list URL of your API instead.
#
# Any string value may use environment variables: ${VAR} (an error when VAR is not set)
# or ${VAR:-default}. Keep secrets out of this file; put them in the environment.
# Write $${ for a literal ${.

# Where interlink keeps its state. The default is an SQLite file under .interlink/ in the
# working directory; for many workers use PostgreSQL, e.g. postgresql://interlink:${DB_PASSWORD}@db/interlink
database: ${INTERLINK_DATABASE_URL:-sqlite:///.interlink/interlink.db}

connections:
  # One entry per external system. The name ("shop") is how resources and pipelines
  # refer to it: letters, digits, '_' and '-'.
  shop:
    base_url: ${SHOP_URL:-https://api.example.com/v1}
    auth:
      type: bearer
      token: ${SHOP_TOKEN:-change-me}

    # Every other kind of auth, one of which replaces the block above:
    #
    # auth:
    #   type: none
    #
    # auth:
    #   type: api_key
    #   key: ${SHOP_API_KEY}
    #   name: X-API-Key          # the header or query parameter name
    #   in: header               # header | query
    #
    # auth:
    #   type: basic
    #   username: ${SHOP_USER}
    #   password: ${SHOP_PASSWORD}
    #
    # auth:                      # server-to-server OAuth2
    #   type: oauth2_client_credentials
    #   token_url: https://auth.example.com/oauth/token
    #   client_id: ${SHOP_CLIENT_ID}
    #   client_secret: ${SHOP_CLIENT_SECRET}
    #   auth_method: client_secret_basic   # or client_secret_post
    #   scope: read write
    #
    # auth:                      # "connect your account": run `interlink connect shop`
    #   type: oauth2
    #   authorize_url: https://auth.example.com/oauth/authorize
    #   token_url: https://auth.example.com/oauth/token
    #   client_id: ${SHOP_CLIENT_ID}
    #   client_secret: ${SHOP_CLIENT_SECRET}
    #   scope: offline_access

    # Extra headers and query parameters sent with every request:
    # headers:
    #   Accept: application/json
    # params:
    #   locale: en

    # Seconds, or a duration such as 500ms, 30s, 1m. One number sets all four phases.
    # timeout: 10
    # timeout:
    #   connect: 5
    #   read: 30s
    #   write: 30s
    #   pool: 10

    # Exponential backoff with full jitter on 429, 5xx and network errors.
    # retry:
    #   max_attempts: 4          # 1 turns retries off
    #   base: 500ms
    #   cap: 20s
    #   max_retry_after: 60s     # the longest Retry-After interlink will honour
    #   idempotency_header: Idempotency-Key

    # A client-side token bucket: `rate` requests every `per`, bursts up to `burst`.
    # rate_limit:
    #   rate: 10
    #   per: 1s
    #   burst: 20

    # max_connections: 32
    # transport: auto            # or aiohttp, threads, httpx
resources:
  # What to read on each connection: here the `customers` of `shop` (shop.customers).
  shop:
    customers:
      path: /customers                # joined to the connection's base_url
      records: data                   # where the records are in the body (a dotted path)
      primary_key: id
      # How the API pages (docs/connectors.md has every style and its options):
      paginate: {type: offset, page_size: 100, total_path: total}
      # paginate: {type: page, page_param: page, size_param: per_page}
      # paginate: {type: cursor, cursor_path: next_cursor, cursor_param: cursor}
      # paginate: {type: cursor, cursor_field: id, cursor_param: starting_after,
      #            stop_when: {path: has_more, equals: false}}      # Stripe
      # paginate: {type: next_url, next_path: links.next}
      # paginate: {type: link_header}                               # GitHub, Shopify
      # Read only what changed since the last run: the API filters on `param`.
      incremental: {field: updated_at, param: updated_since}

pipelines:
  # `interlink run customers` copies shop.customers into the SQLite table `customers`.
  customers:
    source: shop.customers
    destination: {sql: customers}
    write: merge                      # upsert by primary key; or append, replace
    # schedule: "*/15 * * * *"        # run by `interlink worker` or `interlink serve`
"""
