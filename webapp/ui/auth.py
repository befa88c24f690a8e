"""Signing up, in and out, and resetting a forgotten password by a signed, expiring link.

A session names the user and a fingerprint of their password hash, so that changing the
password signs out every other session. Reset links are signed with ``SECRET_KEY``, expire after
``PASSWORD_RESET_SECONDS`` and carry the same fingerprint, so a link works once: using it changes
the hash it was made for."""

from __future__ import annotations

import hashlib
import logging
import smtplib
from email.message import EmailMessage

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from ..accounts import EMAIL, AccountError, create_user
from ..extensions import db
from ..models import User
from .common import field_error, safe_next

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)
PUBLIC = {"ui.auth.login", "ui.auth.signup", "ui.auth.forgot", "ui.auth.reset"}
EMAIL_CHECK = Regexp(EMAIL.pattern, message="Enter an email address like name@example.com.")


class Account(UserMixin):
    """The signed-in user as Flask-Login sees it."""

    def __init__(self, user: User):
        self.user = user
        self.workspace = user.workspace
        self.workspace_id = self.workspace.id
        self.email = user.email

    def get_id(self) -> str:
        return f"{self.user.id}.{fingerprint(self.user)}"


def fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def init_login(manager: LoginManager) -> None:
    manager.login_view = "ui.auth.login"
    manager.login_message = "Please sign in to see that page."
    manager.login_message_category = "info"
    manager.user_loader(load_account)
    manager.unauthorized_handler(unauthorized)


def load_account(ident: str) -> Account | None:
    user_id, _, stamp = ident.partition(".")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or stamp != fingerprint(user) or not user.memberships:
        return None
    return Account(user)


def unauthorized():
    """Pages send the browser to sign in and back; a form sent after the session ended returns
    to the page it was on; the UI's JSON endpoints answer 401."""
    if request.path.endswith(".json"):
        return jsonify({"error": {"code": "signed_out", "message": "sign in again",
                                  "details": {}}}), 401
    session["restore_drafts"] = True  # the form comes back with what was typed (JS)
    target = request.full_path.rstrip("?") if request.method == "GET" else safe_next(
        _referrer_path(), "/")
    flash("Please sign in to continue.", "info")
    return redirect(url_for("ui.auth.login", next=target))


def _referrer_path() -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------- forms


class SignUpForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), EMAIL_CHECK])
    password = PasswordField("Password", validators=[
        InputRequired(), Length(min=8, message="Use at least 8 characters.")])
    confirm = PasswordField("Password again", validators=[
        InputRequired(), EqualTo("password", message="The two passwords differ.")])
    workspace = StringField("Workspace name", validators=[Length(max=200)],
                            description="Optional; you can have your team join it later.")


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), EMAIL_CHECK])
    password = PasswordField("Password", validators=[InputRequired()])
    remember = BooleanField("Keep me signed in on this device")


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), EMAIL_CHECK])


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[
        InputRequired(), Length(min=8, message="Use at least 8 characters.")])
    confirm = PasswordField("New password again", validators=[
        InputRequired(), EqualTo("password", message="The two passwords differ.")])


# ---------------------------------------------------------------- pages


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data,
                               (form.workspace.data or "").strip() or None)
        except AccountError as exc:
            db.session.rollback()
            field_error(form, "password" if "password" in str(exc) else "email",
                        _sentence(str(exc)))
        else:
            login_user(Account(user))
            flash("Welcome to Pixelmerge! Start by uploading a template.", "success")
            return redirect(url_for("ui.dashboard.index"))
    return render_template("auth/signup.html", form=form)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).where(
            User.email == form.email.data.strip().lower()))
        if user is not None and user.check_password(form.password.data) and user.memberships:
            login_user(Account(user), remember=form.remember.data)
            return redirect(safe_next(request.args.get("next")))
        form.password.errors = ["That email and password do not match an account."]
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("ui.auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).where(
            User.email == form.email.data.strip().lower()))
        if user is not None:
            send_reset_link(user)
        # the same answer either way: the page must not tell who has an account
        flash("If an account uses that address, a link to choose a new password is on its "
              "way. It works for an hour.", "info")
        return redirect(url_for("ui.auth.login"))
    return render_template("auth/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    user = user_of_token(token)
    if user is None:
        flash("That link is invalid, used or expired. Ask for a new one.", "error")
        return redirect(url_for("ui.auth.forgot"))
    form = ResetForm()
    if form.validate_on_submit():
        user.set_password(form.password.data)
        db.session.commit()
        login_user(Account(user))
        flash("Your new password is set.", "success")
        return redirect(url_for("ui.dashboard.index"))
    return render_template("auth/reset.html", form=form, email=user.email)


# ---------------------------------------------------------------- reset links


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def reset_token(user: User) -> str:
    return _signer().dumps({"u": user.id, "f": fingerprint(user)})


def user_of_token(token: str) -> User | None:
    try:
        data = _signer().loads(token, max_age=current_app.config["PASSWORD_RESET_SECONDS"])
    except (SignatureExpired, BadSignature):
        return None
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or data.get("f") != fingerprint(user):
        return None
    return user


def send_reset_link(user: User) -> None:
    link = (current_app.config["PUBLIC_URL"].rstrip("/")
            + url_for("ui.auth.reset", token=reset_token(user)))
    text = (f"Someone (hopefully you) asked to reset the Pixelmerge password of {user.email}.\n\n"
            f"Choose a new password here within an hour:\n{link}\n\n"
            "If it was not you, ignore this message: your password stays as it is.\n")
    if not current_app.config.get("SMTP_HOST"):
        log.warning("password reset link for %s (no SMTP_HOST set, so not mailed): %s",
                    user.email, link)
        return
    try:
        send_mail(user.email, "Reset your Pixelmerge password", text)
    except (OSError, smtplib.SMTPException):
        log.exception("could not mail the password reset link to %s", user.email)


def send_mail(to: str, subject: str, text: str) -> None:
    config = current_app.config
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = config["SMTP_FROM"], to, subject
    message.set_content(text)
    with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=15) as smtp:
        smtp.ehlo()
        if config.get("SMTP_STARTTLS") and smtp.has_extn("starttls"):
            smtp.starttls()
        if config.get("SMTP_USER"):
            smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
        smtp.send_message(message)
