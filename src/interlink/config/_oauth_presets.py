"""Provider presets for `auth.type: oauth2`: the endpoints and habits of well-known
providers, so a connection names `preset: stripe` instead of four URLs.

Keys written in interlink.yaml win over the preset's. A provider without an RFC 7009
revocation endpoint has none here: `connections disconnect` then forgets the token and
says the grant must be removed on the provider's side.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OAUTH_PRESETS"]

OAUTH_PRESETS: dict[str, dict[str, Any]] = {
    # Stripe Connect (standard accounts): the connected account's id comes back as
    # stripe_user_id; deauthorizing is Stripe's own POST /oauth/deauthorize, not RFC 7009.
    "stripe": {
        "authorize_url": "https://connect.stripe.com/oauth/authorize",
        "token_url": "https://connect.stripe.com/oauth/token",
        "auth_method": "client_secret_post",
        "scope": "read_only",
        "account_key": "stripe_user_id",
    },
    # Google: a refresh token only with access_type=offline, and again only with
    # prompt=consent once the user has granted access before.
    "google": {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "revocation_url": "https://oauth2.googleapis.com/revoke",
        "auth_method": "client_secret_post",
        "authorize_params": {
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        },
    },
    # GitHub OAuth apps: tokens answered as JSON when asked for it (interlink always asks);
    # a grant is removed through DELETE /applications/{client_id}/grant, not RFC 7009.
    "github": {
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "auth_method": "client_secret_post",
        "scope": "read:user",
    },
    # Facebook Login: long-lived user tokens, no refresh token and no RFC 7009 endpoint.
    "facebook": {
        "authorize_url": "https://www.facebook.com/v21.0/dialog/oauth",
        "token_url": "https://graph.facebook.com/v21.0/oauth/access_token",
        "auth_method": "client_secret_post",
        "scope": "public_profile",
    },
}
