"""SQLAlchemy models, one module per aggregate."""

from .account import Membership, User, Workspace
from .apikey import SCOPES, ApiKey
from .asset import Asset
from .batch import Batch, BatchItem
from .binding import Binding, SyncRun
from .experiment import CountFlush, Experiment, Variant
from .hook import Delivery, Hook
from .live import LiveBanner
from .render import Render
from .source import GoogleAccount, Source
from .template import Template, TemplateVersion
from .usage import Usage

__all__ = ["SCOPES", "ApiKey", "Asset", "Batch", "BatchItem", "Binding", "CountFlush",
           "Delivery", "Experiment", "GoogleAccount", "Hook", "LiveBanner", "Membership",
           "Render", "Source", "SyncRun", "Template", "TemplateVersion", "Usage", "User",
           "Variant", "Workspace"]
