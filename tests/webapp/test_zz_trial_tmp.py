import pytest, traceback
import webapp.rendering as R
from test_api_renders import HEADLINE, create, render, sqlite_template  # noqa

@pytest.fixture(autouse=True)
def spy(monkeypatch):
    orig = R.find_completed
    def wrapped(ws, key):
        try:
            from webapp.extensions import db
            rid = R._completed.get(key)
            print("\nRID", rid, db.engine.url)
            row = orig(ws, key)
            print("\nFIND", row and (row.id, row.key[:8], row.created_at))
            return row
        except Exception:
            traceback.print_exc()
            raise
    monkeypatch.setattr(R, "find_completed", wrapped)

def test_x(api):
    t = create(api, HEADLINE)
    print("\nSTATUS", render(api, t, variables={"title": "Hi"}).status_code)
