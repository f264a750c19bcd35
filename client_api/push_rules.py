"""The push rules API: list, read, create/replace, delete, enable/disable, set actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

RULE = "/pushrules/global/(?P<kind>[^/]*)/(?P<rule_id>[^/]+)"


class _RuleBody(RequestBody):
    actions: list[Any]
    conditions: list[Any] | None = None
    pattern: str | None = None


class _EnabledBody(RequestBody):
    enabled: bool


class _ActionsBody(RequestBody):
    actions: list[Any]


class PushRulesServlet(RestServlet):
    PATTERNS = client_patterns("/pushrules(?:/(?P<scope>global))?/?")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._push = hs.get_push_rules_handler()

    # GET /_matrix/client/v3/pushrules/  and  /pushrules/global/
    async def on_GET(self, request: HttpRequest, scope: str = "") -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        rules = await self._push.get_push_rules_for_sync(requester.user_id)
        return 200, rules["global"] if scope else rules


class PushRulesKindServlet(RestServlet):
    PATTERNS = client_patterns("/pushrules/global/(?P<kind>[^/]+)/")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._push = hs.get_push_rules_handler()

    # GET /_matrix/client/v3/pushrules/global/{kind}/  (Synapse: one kind's rules)
    async def on_GET(self, request: HttpRequest, kind: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._push.get_kind_json(requester.user_id, kind)


class PushRuleServlet(RestServlet):
    PATTERNS = client_patterns(RULE)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._push = hs.get_push_rules_handler()

    # GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def on_GET(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        rule = await self._push.get_rule(requester.user_id, kind, rule_id)
        return 200, rule.to_json(requester.user_id)

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def on_PUT(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, _RuleBody)
        await self._push.set_rule(
            requester.user_id, kind, rule_id, body.actions, body.conditions, body.pattern,
            before=parse_string(request, "before"), after=parse_string(request, "after"))
        return 200, {}

    # DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def on_DELETE(self, request: HttpRequest, kind: str,
                        rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        await self._push.delete_rule(requester.user_id, kind, rule_id)
        return 200, {}


class PushRuleEnabledServlet(RestServlet):
    PATTERNS = client_patterns(f"{RULE}/enabled")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._push = hs.get_push_rules_handler()

    # GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
    async def on_GET(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        rule = await self._push.get_rule(requester.user_id, kind, rule_id)
        return 200, {"enabled": rule.enabled}

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
    async def on_PUT(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, _EnabledBody)
        await self._push.set_enabled(requester.user_id, kind, rule_id, body.enabled)
        return 200, {}


class PushRuleActionsServlet(RestServlet):
    PATTERNS = client_patterns(f"{RULE}/actions")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._push = hs.get_push_rules_handler()

    # GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
    async def on_GET(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        rule = await self._push.get_rule(requester.user_id, kind, rule_id)
        return 200, {"actions": list(rule.actions)}

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
    async def on_PUT(self, request: HttpRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, _ActionsBody)
        await self._push.set_actions(requester.user_id, kind, rule_id, body.actions)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    PushRulesServlet(hs).register(router)
    PushRulesKindServlet(hs).register(router)
    PushRuleServlet(hs).register(router)
    PushRuleEnabledServlet(hs).register(router)
    PushRuleActionsServlet(hs).register(router)
