"""Pages to create, list, rotate and revoke calendar feeds."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.db import utcnow
from app.feeds.links import links_for
from app.policy import Action
from app.schemas.feeds import SubscriptionIn
from app.services import clinic
from app.services import subscriptions as subscription_service
from app.services.errors import ServiceError
from app.web import forms

bp = Blueprint("feeds_admin", __name__, url_prefix="/account/feeds")


def _page(new_links: object = None, status: int = 200) -> http.ResponseValue:
    user = http.current_user()
    assert user is not None
    return (
        render_template(
            "feeds/manage.html",
            subscriptions=subscription_service.list_for(http.db(), user_id=user.id),
            centers=clinic.list_centers(http.db()),
            patients=clinic.list_patients(http.db()),
            new_links=new_links,
            detail_allowed=http.settings().feeds.staff_detail == "full_names",
            now=utcnow(),
        ),
        status,
    )


@bp.route("", methods=["GET", "POST"])
@require(Action.MANAGE_FEEDS)
def manage() -> http.ResponseValue:
    """The user's feeds; create one (its URL is shown once)."""
    if request.method == "GET":
        return _page()
    try:
        # The page has a picker per scope (center_id, chair_id, patient_id); the API one field.
        scope = request.form.get("scope", "")
        picker = f"{scope}_id" if scope in ("center", "chair", "patient") else "scope_id"
        body = forms.parse(SubscriptionIn, scope_id=request.form.get(picker) or None)
        token, _sub = subscription_service.create_subscription(
            http.db(), http.actor(), settings=http.settings(), **body.model_dump()
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _page(status=exc.status)
    flash("Feed created. Copy its address now: it is shown only once.", "success")
    return _page(new_links=links_for(token))


@bp.post("/<int:subscription_id>/rotate")
@require(Action.MANAGE_FEEDS)
def rotate(subscription_id: int) -> http.ResponseValue:
    """Give a feed a new address; the old one stops at once."""
    try:
        token, _sub = subscription_service.rotate(http.db(), http.actor(), subscription_id)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("feeds_admin.manage"))
    flash("New address made; the old one no longer works. Copy the new one now.", "success")
    return _page(new_links=links_for(token))


@bp.post("/<int:subscription_id>/revoke")
@require(Action.MANAGE_FEEDS)
def revoke(subscription_id: int) -> http.ResponseValue:
    """Stop a feed."""
    try:
        subscription_service.revoke(http.db(), http.actor(), subscription_id)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(
            "Feed revoked: its address answers 'not found' from now on. Google may keep showing "
            "its last copy for up to a day.",
            "success",
        )
    return redirect(http.redirect_target(url_for("feeds_admin.manage")))
