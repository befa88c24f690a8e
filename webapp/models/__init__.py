"""SQLAlchemy models, one module per aggregate."""

from .account import Membership, User, Workspace
from .apikey import SCOPES, ApiKey
from .asset import Asset
from .batch import Batch, BatchItem
from .hook import Delivery, Hook
from .render import Render
from .template import Template, TemplateVersion
from .usage import Usage

__all__ = ["SCOPES", "ApiKey", "Asset", "Batch", "BatchItem", "Delivery", "Hook", "Membership",
           "Render",
           "Template", "TemplateVersion", "Usage", "User", "Workspace"]
