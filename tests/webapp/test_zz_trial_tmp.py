import pytest
import webapp.rendering as R
from test_api_renders import HEADLINE, create, render, sqlite_template  # noqa

@pytest.fixture(autouse=True)
def spy(monkeypatch):
    orig = R.find_completed
    def wrapped(ws, key):
        from webapp.extensions import db
        rid = R._completed.get(key)
        row = orig(ws, key)
        print("\nFIND", db.engine.url, rid, row and (row.id, row.key[:8], row.created_at), db.session.get(R.Render, rid) if rid else None)
        return row
    monkeypatch.setattr(R, "find_completed", wrapped)

def test_x(api):
    t = create(api, HEADLINE)
    print("\nSTATUS", render(api, t, variables={"title": "Hi"}).status_code)
