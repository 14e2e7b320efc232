"""JSON API for calendar feed subscriptions."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.feeds.links import links_for
from app.policy import Action
from app.schemas.feeds import (
    SubscriptionCreatedOut,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
)
from app.services import subscriptions as subscription_service


def _created(token: str, sub: Any) -> dict[str, Any]:
    links = links_for(token)
    return SubscriptionOut.model_validate(sub).model_dump() | {
        "url": links.https,
        "webcal_url": links.webcal,
    }


@bp.get("/subscriptions")
@guarded(Action.MANAGE_FEEDS)
@bp.output(SubscriptionList)
def subscriptions() -> Any:
    """The calendar feeds the caller created."""
    user = http.current_user()
    assert user is not None
    return {"subscriptions": subscription_service.list_for(http.db(), user_id=user.id)}


@bp.post("/subscriptions")
@guarded(Action.MANAGE_FEEDS)
@bp.input(SubscriptionIn, arg_name="body")
@bp.output(SubscriptionCreatedOut, status_code=201)
def create_subscription(body: SubscriptionIn) -> Any:
    """Create a calendar feed; its URL is in this answer only."""
    token, sub = subscription_service.create_subscription(
        http.db(), http.actor(), settings=http.settings(), **body.model_dump()
    )
    return _created(token, sub)


@bp.post("/subscriptions/<int:subscription_id>/rotate")
@guarded(Action.MANAGE_FEEDS)
@bp.output(SubscriptionCreatedOut)
def rotate_subscription(subscription_id: int) -> Any:
    """Give a feed a new URL; the old one answers 404 at once."""
    token, sub = subscription_service.rotate(http.db(), http.actor(), subscription_id)
    return _created(token, sub)


@bp.post("/subscriptions/<int:subscription_id>/revoke")
@guarded(Action.MANAGE_FEEDS)
@bp.output(SubscriptionOut)
def revoke_subscription(subscription_id: int) -> Any:
    """Revoke a feed."""
    return subscription_service.revoke(http.db(), http.actor(), subscription_id)
