"""Schemathesis hooks for scripts/fuzz-api.

1. Keep the fuzzer from locking itself out. It calls the API as an admin with an API
   token. Left alone it would sooner or later revoke that token (DELETE
   /api/tokens/{id}), or make another admin and then demote or delete its own account
   (while it is the only admin that is a documented 409): every request after that
   would be a 401, which the document allows, but nothing would be fuzzed any more.
   So requests aimed at the fuzzer's own account or token are not sent; deletions and
   edits of every other user and token are.

2. Say what no schema can, in the cases meant to be valid: a list cursor is opaque,
   valid only as the server handed it out in a `Link` header, so none is invented;
   and a password must pass a strength estimate (and not be built from the account's
   name or email), so such cases get a long random one. And the directory list's
   `search` stands alone: with `sort`, `order` or `role` it is a documented 400
   (search results come in the order users were added), so a valid case keeps the
   search and drops the others.
"""

import os
import secrets

import schemathesis

ADMIN_ID = os.environ["FUZZ_ADMIN_ID"]
TOKEN_ID = os.environ["FUZZ_TOKEN_ID"]

# (method, path template) -> the id it must not be sent to.
PROTECTED = {
    ("PUT", "/api/users/{id}"): ADMIN_ID,
    ("PATCH", "/api/users/{id}"): ADMIN_ID,
    ("DELETE", "/api/users/{id}"): ADMIN_ID,
    ("DELETE", "/api/tokens/{id}"): TOKEN_ID,
}


def _is_negative(case):
    # Cases meant to be invalid say so; the examples phase leaves some cases without
    # a mode, and those are meant to be valid.
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return mode is not None and mode.is_negative


@schemathesis.hook
def filter_case(ctx, case):
    method = case.method.upper()
    path = case.operation.path
    protected = PROTECTED.get((method, path))
    if protected is not None and str((case.path_parameters or {}).get("id")).strip() == protected:
        return False
    return True


# Operations whose body may set a password, checked against the password policy.
SETS_PASSWORD = {("POST", "/api/users"), ("PUT", "/api/users/{id}"), ("PATCH", "/api/users/{id}")}


@schemathesis.hook
def map_case(ctx, case):
    if _is_negative(case):
        return case
    method = case.method.upper()
    path = case.operation.path
    if (method, path) == ("GET", "/api/users") and case.query and case.query.get("cursor"):
        del case.query["cursor"]
    if (method, path) == ("GET", "/api/users") and case.query and "search" in case.query:
        for ordering in ("sort", "order", "role"):
            case.query.pop(ordering, None)
    if (method, path) in SETS_PASSWORD and isinstance(case.body, dict) and "password" in case.body:
        case.body["password"] = secrets.token_urlsafe(24)
    return case
