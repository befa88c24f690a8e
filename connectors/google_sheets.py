"""Google Sheets, through gspread: read a worksheet in one request, write outputs back in
batched ``values:batchUpdate`` requests (RAW text; USER_ENTERED only for formulas).

Credentials: the operator's service account (``GOOGLE_SERVICE_ACCOUNT_FILE``; users share their
sheet with its address), a user's own service account key (a secret field), or a Google account
connected through OAuth (the web app lends an authorised session). The API's base URL is
``GOOGLE_SHEETS_API_URL``: an operator setting, not user input; the spreadsheet id a user gives
is only ever a quoted path segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from gspread.exceptions import APIError
from gspread.utils import rowcol_to_a1
from requests.exceptions import RequestException

from .base import Cell, Connector, Row, SourceError, Table
from .google_api import GOOGLE_SHEETS_API_URL, Backoff, client, service_account_credentials

_URL_ID = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_BARE_ID = re.compile(r"[A-Za-z0-9_-]{10,100}")
MAX_RANGES = 5000  # per values:batchUpdate request: about 1 MB, under the 2 MB Google advises


def spreadsheet_id(value: str) -> str:
    """The id in a spreadsheet's URL, or the id itself."""
    value = (value or "").strip()
    found = _URL_ID.search(value)
    if found:
        return found.group(1)
    if _BARE_ID.fullmatch(value):
        return value
    raise SourceError("invalid_spreadsheet", f"spreadsheet: {value!r} is neither a Google "
                      "Sheets URL (https://docs.google.com/spreadsheets/d/…) nor a spreadsheet id",
                      status=400, details={"path": "config.spreadsheet"})


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


class GoogleSheets(Connector):
    type = "google_sheets"
    name = "Google Sheets"
    writable = True

    def __init__(self, config, secrets, context):
        super().__init__(config, secrets, context)
        self.id = spreadsheet_id(self.config.get("spreadsheet", ""))
        self._client = None
        self._sheet: dict[str, Any] | None = None  # the worksheet's properties

    # ------------------------------------------------------------------ description

    @classmethod
    def configuration_schema(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["spreadsheet"],
            "additionalProperties": False,
            "properties": {
                "spreadsheet": {"type": "string", "minLength": 1, "title": "Spreadsheet",
                                "description": "The sheet's URL or its id"},
                "worksheet": {"type": "string", "title": "Worksheet",
                              "description": "The tab's name; the first tab when omitted"},
                "header_row": {"type": "integer", "minimum": 1, "default": 1,
                               "title": "Header row"},
                "auth": {"type": "string", "enum": ["service_account", "oauth"],
                         "default": "service_account", "title": "Access"},
                "account": {"type": ["integer", "null"], "title": "Google account",
                            "description": "A connected Google account (auth: oauth); the "
                                           "workspace's newest when omitted"},
                "service_account_key": {"type": "string", "secret": True,
                                        "title": "Your own service account key (JSON)",
                                        "description": "Optional; the operator's service "
                                                       "account is used otherwise"},
            },
        }

    @classmethod
    def describe(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        info = settings.get("service_account_info") or {}
        return {"service_account_email": info.get("client_email"),
                "oauth": bool(settings.get("oauth_enabled"))}

    # ------------------------------------------------------------------ plumbing

    @property
    def http(self):
        if self._client is None:
            self._client = self._connect()
        return self._client.http_client

    def _connect(self):
        settings = self.context.settings
        options = {"api_url": settings.get("sheets_api_url") or GOOGLE_SHEETS_API_URL,
                   "backoff": settings.get("backoff") or Backoff(),
                   "timeout": settings.get("timeout", 30.0)}
        if self.config.get("auth") == "oauth":
            if self.context.oauth_session is None:
                raise SourceError("oauth_unavailable", "Google sign-in is not configured on "
                                  "this server", status=400)
            return client(session=self.context.oauth_session(self.config.get("account")),
                          **options)
        return client(credentials=service_account_credentials(self._key_info()), **options)

    def _key_info(self) -> dict[str, Any]:
        own = self.secrets.get("service_account_key")
        if own:
            try:
                return json.loads(own)
            except ValueError:
                raise SourceError("invalid_credentials", "service_account_key: not a JSON key "
                                  "file's content", status=400) from None
        info = self.context.settings.get("service_account_info")
        if not info:
            raise SourceError("service_account_missing", "no service account is configured: "
                              "the operator sets GOOGLE_SERVICE_ACCOUNT_FILE, or give your own "
                              "service_account_key, or use auth: oauth", status=400)
        return info

    @property
    def requests(self) -> int:
        return self._client.http_client.requests if self._client else 0

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.http, method)(*args, **kwargs)
        except APIError as exc:
            raise self._api_error(exc) from None
        except RequestException as exc:
            raise SourceError("source_unreachable", f"Google Sheets could not be reached: "
                              f"{exc.__class__.__name__}", status=503, transient=True) from None
        except Exception as exc:  # google-auth's token errors, without importing their classes
            if type(exc).__module__.startswith(("google.auth", "authlib")):
                raise _auth_error(exc, self.config.get("auth") == "oauth") from None
            raise

    def _api_error(self, exc: APIError) -> SourceError:
        code, message = exc.code, exc.error.get("message", "")
        if code == 404:
            return SourceError("spreadsheet_not_found", f"spreadsheet {self.id} does not exist "
                               "or was deleted: check its URL", status=404)
        if code == 403:
            return SourceError("spreadsheet_not_shared", self._share_hint(), status=403)
        if code == 401:
            return _auth_error(exc, self.config.get("auth") == "oauth")
        if code == 429 or code >= 500:
            return SourceError("sheets_unavailable", f"Google Sheets answered {code} "
                               f"({message or 'quota'}) after retrying; the sync resumes "
                               "on its next run", status=503, transient=True)
        if "Unable to parse range" in message:
            return self._missing_worksheet()
        return SourceError("sheets_error", f"Google Sheets refused the request: {message}",
                           status=422)

    def _share_hint(self) -> str:
        if self.config.get("auth") == "oauth":
            return (f"the connected Google account cannot open spreadsheet {self.id}: ask its "
                    "owner to share it with that account")
        email = self._key_info().get("client_email", "the service account")
        return (f"spreadsheet {self.id} is not shared with {email}: open it in Google Sheets, "
                f"press Share and add {email} as an Editor")

    def _missing_worksheet(self) -> SourceError:
        name = self.config.get("worksheet")
        return SourceError("worksheet_not_found", f"worksheet: the spreadsheet has no tab "
                           f"named {name!r}", status=422, details={"path": "config.worksheet"})

    # ------------------------------------------------------------------ reading

    def _metadata(self) -> dict[str, Any]:
        return self._call("fetch_sheet_metadata", self.id)

    def tabs(self) -> tuple[str, list[str]]:
        """The spreadsheet's title and its tabs' names, in order (one metadata request)."""
        meta = self._metadata()
        return (meta.get("properties", {}).get("title", ""),
                [s["properties"]["title"] for s in meta.get("sheets", [])])

    def _worksheet(self) -> dict[str, Any]:
        if self._sheet is None:
            meta = self._metadata()
            sheets = [s["properties"] for s in meta.get("sheets", [])]
            wanted = self.config.get("worksheet")
            found = [s for s in sheets if wanted is None or s["title"] == wanted]
            if not found:
                titles = ", ".join(repr(s["title"]) for s in sheets)
                raise SourceError("worksheet_not_found", f"worksheet: the spreadsheet has no "
                                  f"tab named {wanted!r}; its tabs are {titles}", status=422,
                                  details={"path": "config.worksheet"})
            self._sheet = {**found[0], "spreadsheet_title":
                           meta.get("properties", {}).get("title", "")}
        return self._sheet

    @property
    def header_row(self) -> int:
        return int(self.config.get("header_row") or 1)

    def _title(self) -> str:
        return (self.config.get("worksheet") or self.known_worksheet
                or self._worksheet()["title"])

    def read(self) -> Table:
        sheet = self._worksheet()
        values = self._call("values_get", self.id, quote_title(sheet["title"]),
                            params={"valueRenderOption": "FORMATTED_VALUE"}).get("values", [])
        table = self._table(values, columns=sheet["gridProperties"]["columnCount"],
                            title=sheet["spreadsheet_title"])
        table.worksheet = sheet["title"]
        return table

    def reread(self) -> Table:
        """The values again, in one request (the metadata is known)."""
        values = self._call("values_get", self.id, quote_title(self._title()),
                            params={"valueRenderOption": "FORMATTED_VALUE"}).get("values", [])
        sheet = self._sheet or {}
        return self._table(values, columns=sheet.get("gridProperties", {}).get("columnCount"),
                           title=sheet.get("spreadsheet_title", ""))

    def read_rows(self, numbers: list[int]) -> Table:
        title, hr = quote_title(self._title()), self.header_row
        ranges = [f"{title}!{hr}:{hr}"] + [f"{title}!{n}:{n}" for n in numbers]
        answer = self._call("values_batch_get", self.id, ranges,
                            params={"valueRenderOption": "FORMATTED_VALUE"})
        found = [r.get("values", [[]]) for r in answer.get("valueRanges", [])]
        header = _strings(found[0][0]) if found and found[0] else []
        if not any(header):
            raise self._no_header()
        rows = [Row(n, _strings(v[0]) if v else []) for n, v in zip(numbers, found[1:],
                                                                   strict=False)]
        return Table(header, rows, header_row=hr)

    def _table(self, values: list[list[Any]], *, columns: int | None, title: str) -> Table:
        hr = self.header_row
        if len(values) < hr or not any(str(c).strip() for c in values[hr - 1]):
            raise self._no_header()
        rows = [Row(hr + 1 + i, _strings(cells)) for i, cells in enumerate(values[hr:])]
        return Table(_strings(values[hr - 1]), rows, header_row=hr, columns_available=columns,
                     title=title)

    def _no_header(self) -> SourceError:
        return SourceError("header_row_missing", f"header_row: row {self.header_row} of "
                           f"worksheet {self._title()!r} is empty; put the column names there",
                           status=422, details={"path": "config.header_row"})

    # ------------------------------------------------------------------ writing

    def add_columns(self, table: Table, headers: list[str]) -> dict[str, int]:
        start = table.width
        if table.columns_available is None:
            table.columns_available = self._worksheet()["gridProperties"]["columnCount"]
        missing = start + len(headers) - table.columns_available
        if missing > 0:
            self._call("batch_update", self.id, {"requests": [{"appendDimension": {
                "sheetId": self._worksheet()["sheetId"], "dimension": "COLUMNS",
                "length": missing}}]})
            table.columns_available += missing
        table.width = start + len(headers)
        return {header: start + i for i, header in enumerate(headers)}

    def write(self, cells: list[Cell]) -> None:
        title = quote_title(self._title())
        for formula in (False, True):
            data = list(_ranges(title, [c for c in cells if c.formula == formula]))
            option = "USER_ENTERED" if formula else "RAW"
            for start in range(0, len(data), MAX_RANGES):
                self._call("values_batch_update", self.id, {
                    "valueInputOption": option, "data": data[start:start + MAX_RANGES]})


def _strings(cells: list[Any]) -> list[str]:
    return ["" if c is None else str(c) for c in cells]


def _ranges(title: str, cells: list[Cell]) -> Iterator[dict[str, Any]]:
    """Runs of consecutive rows in one column become one range."""
    ordered = sorted(cells, key=lambda c: (c.column, c.row))
    run: list[Cell] = []
    for cell in ordered:
        if run and (cell.column != run[-1].column or cell.row != run[-1].row + 1):
            yield _range(title, run)
            run = []
        run.append(cell)
    if run:
        yield _range(title, run)


def _range(title: str, run: list[Cell]) -> dict[str, Any]:
    first = rowcol_to_a1(run[0].row, run[0].column + 1)
    last = rowcol_to_a1(run[-1].row, run[-1].column + 1)
    return {"range": f"{title}!{first}:{last}", "majorDimension": "ROWS",
            "values": [[c.value] for c in run]}


def _auth_error(exc: Exception, oauth: bool) -> SourceError:
    if oauth:
        return SourceError("google_reconnect", "Google refused the connected account's "
                           "authorisation (revoked or expired): reconnect the Google account",
                           status=401, reconnect=True)
    return SourceError("google_auth_failed", f"the service account could not sign in to "
                       f"Google: {exc}", status=401)
