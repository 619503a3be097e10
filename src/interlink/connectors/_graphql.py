"""GraphQL resources: one query, its variables set by the paginator (Relay by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlink.errors import ApiError
from interlink.http import url_before_auth

from ._page import Fetched, RequestSpec
from ._resource import BaseResource

if TYPE_CHECKING:
    from interlink.config import GraphQLResourceConfig
    from interlink.http import ApiClient

__all__ = ["GraphQLResource", "graphql_error_message"]


def graphql_error_message(errors: Any) -> str:
    """One line from a GraphQL `errors` list: the first message, its path, and a count."""
    if not isinstance(errors, list) or not errors:
        return "the GraphQL response reported errors"
    first = errors[0]
    message = first.get("message") if isinstance(first, dict) else str(first)
    path = first.get("path") if isinstance(first, dict) else None
    text = str(message or "unknown error")
    if path:
        text += f" (at {'.'.join(str(p) for p in path)})"
    if len(errors) > 1:
        text += f" and {len(errors) - 1} more"
    return text


class GraphQLResource(BaseResource):
    """Records from a GraphQL query, paged through its variables.

    ```yaml
    products:
      type: graphql
      query: |
        query($first: Int, $after: String, $since: String) {
          products(first: $first, after: $after, updatedSince: $since) {
            edges { node { id sku name updatedAt } }
            pageInfo { hasNextPage endCursor }
          }
        }
      paginate: {type: relay, path: data.products}
      incremental: {field: updatedAt, param: since}
    ```

    A body with `errors` raises ApiError with the first message, even when `data` came too:
    a partial answer would silently lose records.
    """

    config: GraphQLResourceConfig

    def __init__(self, name: str, client: ApiClient, config: GraphQLResourceConfig) -> None:
        super().__init__(name, client)
        self.config = config
        self.primary_key = config.primary_key

    def _first_request(self) -> RequestSpec:
        return RequestSpec(self.config.path, dict(self.config.variables))

    async def _fetch(self, spec: RequestSpec) -> Fetched:
        response = await self.client.post(
            spec.url,
            json={"query": self.config.query, "variables": spec.params},
            # A query changes nothing: safe to send again after a failure.
            retry_safe=True,
        )
        body = self.client.parse_json(response)
        if isinstance(body, dict) and body.get("errors"):
            raise ApiError(
                graphql_error_message(body["errors"]),
                method="POST",
                url=self.client.redactor.url(str(url_before_auth(response.request))),
                status_code=response.status_code,
            )
        return Fetched(body, response)
